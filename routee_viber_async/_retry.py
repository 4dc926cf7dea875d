"""The retry decision and the retry loop (tenacity, through its documented API).

What is retried (:func:`classify`): connection errors, timeouts, HTTP 429 and 500/502/503/504.
What is *ambiguous* (may have reached the server): a timeout or a dropped connection after the
request may have been written, and HTTP 500/502/504. With
``RetryPolicy.retry_ambiguous_sends=False`` a non-idempotent request is not repeated after an
ambiguous failure; 429, 503 and failures that happened before the request was written (refused
connections, a failed token fetch) are always safe to repeat.

The transport makes a call's first try itself; only when it fails with a retryable error does
:meth:`Retrier.after_failure` take the call over, in the shape of hynek/stamina: an
``AsyncRetrying`` iteration whose attempt 1 is the failure already at hand, so that tenacity
makes every decision (retry predicate, wait, stop, ``before_sleep``) about it and what follows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ._config import RetryBudget, RetryPolicy
from ._errors import (
    APIStatusError,
    CauseSummary,
    RateLimitError,
    RequestTimeoutError,
    RouteeError,
    ServerError,
    TransportError,
    bare_path,
    outcome_unknown,
    parse_retry_after,
)
from ._hooks import HookDispatcher, RetryEvent

__all__ = [
    "RETRYABLE_STATUSES",
    "Attempt",
    "Decision",
    "Retrier",
    "RetryQuota",
    "bare_path",
    "classify",
    "parse_retry_after",
    "retry_after_of",
    "summarise_cause",
    "transport_error_from",
]

logger = logging.getLogger("routee_viber_async")

#: HTTP statuses worth another attempt.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Errors that no retry can cure.
_FATAL_CAUSES: tuple[type[BaseException], ...] = (
    aiohttp.InvalidURL,
    aiohttp.ClientConnectorCertificateError,
)
_monotonic = time.monotonic


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def retry_after_of(exc: BaseException | None) -> float | None:
    """The server's ``Retry-After`` (in seconds) carried by a 429 or 503 error, if any."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, ServerError) and exc.status == 503:
        return parse_retry_after(_header(exc.headers, "retry-after"))
    return None


def _describe(exc: BaseException) -> str:
    # Never str(exc): aiohttp's messages may carry the full URL with its query string.
    # An OSError's strerror is the system's text only when errno is set; aiohttp builds some
    # OSErrors as (None, message-with-URL).
    name = type(exc).__name__
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name


class _FatalCauseSummary(CauseSummary):
    """The summary of a failure that no retry can cure (a bad URL, a refused certificate)."""


def summarise_cause(exc: BaseException) -> CauseSummary:
    """A stand-in for ``exc`` to chain on an SDK error: its type name and a safe message.

    Never ``exc`` itself: aiohttp's errors hold the request's headers (``Authorization``) and
    URL. The message is the part that names no request: a ``ClientResponseError``'s
    ``message`` ("Invalid status line", "Got more than 8190 bytes..."), an ``OSError``'s
    system text, the text of a disconnect or payload error; other types give their name only.
    """
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        message = str(exc.message)
    elif isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.strerror:
        message = exc.strerror
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        message = str(exc)
    else:
        message = ""
    cls = _FatalCauseSummary if isinstance(exc, _FATAL_CAUSES) else CauseSummary
    return cls(name, message[:500])


def transport_error_from(exc: BaseException, method: str, path: str) -> TransportError:
    """Map an aiohttp or timeout exception to a :class:`TransportError` with ``request_sent``.

    ``request_sent`` is False when the request certainly did not leave (the connection could
    not be made), True when it may have reached the server: aiohttp gives no typed signal
    that a request on an established connection was never written, so every failure there
    counts as maybe sent. The error's ``__cause__`` is a :func:`summarise_cause` of ``exc``
    (never ``exc``): raise it outside the ``except`` block that caught ``exc``, or its
    ``__context__`` would be ``exc`` again.
    """
    error = _transport_error(exc, method, bare_path(path))
    error.__cause__ = summarise_cause(exc)
    error.__suppress_context__ = True
    return error


def _transport_error(exc: BaseException, method: str, path: str) -> TransportError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeoutError(
            f"timed out connecting ({_describe(exc)})",
            method=method,
            path=path,
            request_sent=False,
        )
    if isinstance(exc, TimeoutError):
        return RequestTimeoutError(
            "timed out waiting for the answer", method=method, path=path, request_sent=True
        )
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return TransportError(
            f"cannot connect ({_describe(exc)})", method=method, path=path, request_sent=False
        )
    return TransportError(
        f"connection failed ({_describe(exc)})", method=method, path=path, request_sent=True
    )


class Decision(NamedTuple):
    """Why an error may be retried, and what that retry means."""

    reason: str
    ambiguous: bool
    timeout: bool


def classify(exc: BaseException) -> Decision | None:
    """The retry decision for one failed attempt, or None when it must not be retried.

    ``ambiguous`` is True when the request may have been applied by the server; callers
    combine it with idempotency and ``retry_ambiguous_sends``.
    """
    if isinstance(exc, APIStatusError):
        status = exc.status
        if status not in RETRYABLE_STATUSES:
            return None
        return Decision(f"HTTP {status}", outcome_unknown(exc), False)
    if isinstance(exc, TransportError):
        if isinstance(exc.__cause__, _FatalCauseSummary):
            return None
        sent = outcome_unknown(exc)
        timeout = isinstance(exc, RequestTimeoutError)
        kind = "timeout" if timeout else "connection error"
        return Decision(kind if sent else f"{kind} before sending", sent, timeout)
    return None


class RetryQuota:
    """The running state of a :class:`RetryBudget` (one per client, shared by its views)."""

    __slots__ = ("capacity", "level", "retry_cost", "success_refund", "timeout_cost")

    def __init__(self, budget: RetryBudget) -> None:
        self.capacity = budget.capacity
        self.level = budget.capacity
        self.retry_cost = budget.retry_cost
        self.timeout_cost = budget.timeout_cost
        self.success_refund = budget.success_refund

    def acquire(self, timeout: bool) -> int | None:
        """Take the price of one retry; return it, or None when the budget cannot pay."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if cost > self.level:
            return None
        self.level -= cost
        return cost

    def release(self, amount: int) -> None:
        """Give ``amount`` tokens back, up to the capacity."""
        level = self.level + amount
        self.level = level if level < self.capacity else self.capacity

    def on_first_success(self) -> None:
        """A request succeeded at its first attempt."""
        if self.level < self.capacity:
            self.release(self.success_refund)

    def __repr__(self) -> str:
        return f"<RetryQuota {self.level}/{self.capacity}>"


#: One try of a call. Given how many HTTP requests the call made before it and the seconds left
#: before the policy's deadline (None: no deadline), it returns the answer's data and how many
#: HTTP requests the try made (2 when it replayed with a fresh token); or it raises a
#: RouteeError whose ``attempts`` is the number of HTTP requests it made and whose
#: ``nothing_sent`` says that its last one never left.
Attempt = Callable[[int, float | None], Awaitable[tuple[Any, int]]]


class Retrier:
    """The retry settings of one transport view: its policy, the shared quota, the sleep."""

    __slots__ = ("closed", "hooks", "policy", "quota", "sleep")

    def __init__(
        self,
        policy: RetryPolicy,
        quota: RetryQuota | None,
        *,
        sleep: Callable[[float], Awaitable[None]],
        closed: Callable[[], bool],
        hooks: HookDispatcher | None = None,
    ) -> None:
        self.hooks = hooks  # told of each retry scheduled
        self.policy = policy
        self.quota = quota if policy.budget is not None else None
        self.sleep = sleep
        self.closed = closed

    def deadline_left(self, started: float) -> float | None:
        """Seconds left before the deadline of a call that started at ``started``."""
        deadline = self.policy.deadline
        return None if deadline is None else deadline - (_monotonic() - started)

    def on_first_try_success(self) -> None:
        """A call succeeded at its first try: refund the client's retry budget a little."""
        if self.quota is not None:
            self.quota.on_first_success()

    async def after_failure(
        self,
        attempt: Attempt,
        error: RouteeError,
        *,
        method: str,
        path: str,
        idempotent: bool,
        started: float,
    ) -> tuple[Any, int]:
        """Retry a call whose first try failed with ``error``; return ``(data, requests)``.

        Raises the last error, its ``attempts`` the HTTP requests of every try, and
        ``earlier_attempt_unknown`` set when some try may have been applied by the server.
        """
        return await _RetriedCall(self, method, path, idempotent, started).run(attempt, error)


class _RetriedCall:
    """One call from its first failure on: the tenacity loop and the callbacks it runs.

    Only this class writes its state: the attempt function reports its facts by what it
    returns or raises.
    """

    __slots__ = (
        "ambiguous_seen",
        "cost",
        "decision",
        "idempotent",
        "method",
        "path",
        "requests",
        "retrier",
        "started",
    )

    def __init__(
        self, retrier: Retrier, method: str, path: str, idempotent: bool, started: float
    ) -> None:
        self.retrier = retrier
        self.method = method
        self.path = bare_path(path)
        self.idempotent = idempotent
        self.started = started
        self.requests = 0
        self.cost = 0  # what the latest retry took from the client's budget
        self.ambiguous_seen = False
        self.decision: Decision | None = None

    async def run(self, attempt: Attempt, first_error: RouteeError) -> tuple[Any, int]:
        retrier = self.retrier
        retrying = AsyncRetrying(
            retry=retry_if_exception(self.should_retry),
            wait=self.wait,
            stop=self.stop,
            before_sleep=self.before_sleep,
            sleep=retrier.sleep,
            reraise=True,
        )
        self.requests = first_error.attempts
        failed_first: RouteeError | None = first_error
        data: Any = None
        try:
            async for try_ in retrying:
                with try_:
                    if failed_first is not None:
                        # Attempt 1 was made by the transport: its failure is tenacity's
                        # attempt 1 outcome, decided on like every other.
                        error, failed_first = failed_first, None
                        raise error
                    try:
                        data, made = await attempt(
                            self.requests, retrier.deadline_left(self.started)
                        )
                    except RouteeError as exc:
                        self.requests += exc.attempts
                        raise
                    self.requests += made
        except RouteeError as error:
            error.attempts = self.requests
            if self.ambiguous_seen:
                error.earlier_attempt_unknown = True
            raise
        if retrier.quota is not None and self.cost:
            retrier.quota.release(self.cost)
        return data, self.requests

    # -- tenacity's callbacks -----------------------------------------------------------------

    def should_retry(self, exc: BaseException) -> bool:
        """tenacity's ``retry``: whether ``exc`` is worth another try (never once closed)."""
        self.decision = None
        if not isinstance(exc, RouteeError) or self.retrier.closed():
            return False
        decision = classify(exc)
        if decision is None:
            return False
        if exc.nothing_sent and decision.ambiguous:
            decision = Decision(f"{decision.reason} before sending", False, decision.timeout)
        if decision.ambiguous:
            self.ambiguous_seen = True  # whatever later tries say, this one may have applied
            if not self.idempotent and not self.retrier.policy.retry_ambiguous_sends:
                if logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "not retrying %s %s after %s: it may have reached the server "
                        "(retry_ambiguous_sends=False)",
                        self.method,
                        self.path,
                        decision.reason,
                    )
                return False
        self.decision = decision
        return True

    def wait(self, state: RetryCallState) -> float:
        """tenacity's ``wait``: full-jitter backoff, at least the server's ``Retry-After``."""
        policy = self.retrier.policy
        backoff = wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        seconds = backoff(state)
        retry_after = retry_after_of(_failure(state))
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, policy.max_retry_after))
        return float(seconds * policy.sleep_scale)

    def stop(self, state: RetryCallState) -> bool:
        """tenacity's ``stop``: ``max_attempts``, the deadline, the client's retry budget."""
        retrier = self.retrier
        if stop_after_attempt(retrier.policy.max_attempts)(state):
            return True
        remaining = retrier.deadline_left(self.started)
        if remaining is not None and state.upcoming_sleep >= remaining:
            self._log_no_retry("the next attempt would start after the deadline")
            return True
        quota = retrier.quota
        if quota is not None:
            decision = self.decision
            cost = quota.acquire(decision is not None and decision.timeout)
            if cost is None:
                self._log_no_retry("the client's retry budget is exhausted")
                return True
            self.cost = cost
        return False

    def before_sleep(self, state: RetryCallState) -> None:
        """tenacity's ``before_sleep``: one INFO record per retry; let go of the failure's
        tracebacks, which would keep the failed try's frames alive through the sleep."""
        _drop_tracebacks(_failure(state))
        decision = self.decision
        hooks = self.retrier.hooks
        if hooks is not None:
            hooks.retry_scheduled(
                RetryEvent(
                    self.method,
                    self.path,
                    state.upcoming_sleep,
                    decision.reason if decision is not None else "error",
                    state.attempt_number,
                )
            )
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "retrying %s %s in %.3fs: try %d of %d failed (%s)",
                self.method,
                self.path,
                state.upcoming_sleep,
                state.attempt_number,
                self.retrier.policy.max_attempts,
                decision.reason if decision is not None else "error",
            )

    def _log_no_retry(self, reason: str) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("not retrying %s %s: %s", self.method, self.path, reason)


def _failure(state: RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


def _drop_tracebacks(error: BaseException | None) -> None:
    """Forget the tracebacks of a failure that is behind us.

    The error itself stays, small (its status, masked body and headers). Only the
    ``__cause__`` chain is ours to clear: ``__context__`` may lead to the caller's own
    exceptions.
    """
    seen = 0
    while error is not None and seen < 8:
        error.__traceback__ = None
        error = error.__cause__
        seen += 1
