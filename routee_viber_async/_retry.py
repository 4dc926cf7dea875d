"""The retry decision and its tenacity wiring.

What is retried (:func:`classify`): connection errors, timeouts, HTTP 429 and 500/502/503/504.
What is *ambiguous* (may have reached the server): a timeout or a dropped connection after the
request was written, and HTTP 500/502/504. With ``RetryPolicy.retry_ambiguous_sends=False`` a
non-idempotent request is not repeated after an ambiguous failure; 429, 503 and failures that
happened before the request was written (refused connections, a keep-alive connection found
closed before writing, a failed token fetch) are always safe to repeat.

The transport makes a request's first attempt itself (no tenacity overhead on the happy path);
only when that attempt fails with a retryable error does :class:`RetryRun` hand the call to
tenacity (its ``Retrying`` state machine, driven by an async loop: see :meth:`RetryRun.run`),
which takes that failure as its attempt 1 and carries on from there (waits, stops,
``before_sleep`` logging).
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import aiohttp
from tenacity import (
    DoSleep,
    RetryCallState,
    Retrying,
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
    outcome_unknown,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Decision",
    "RetryEngine",
    "RetryQuota",
    "RetryRun",
    "bare_path",
    "classify",
    "nothing_written",
    "parse_retry_after",
    "retry_after_of",
    "set_attempts",
    "summarise_cause",
    "transport_error_from",
]

logger = logging.getLogger("routee_viber_async")

#: HTTP statuses worth another attempt.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# aiohttp raises this, with exactly this message, when it finds the transport closing *before*
# writing a chunk: for our requests (headers and a small body leave in one write) that means
# nothing at all reached the socket.
_NOTHING_WRITTEN_MESSAGE = "Cannot write to closing transport"
# Errors that no retry can cure.
_FATAL_CAUSES: tuple[type[BaseException], ...] = (
    aiohttp.InvalidURL,
    aiohttp.ClientConnectorCertificateError,
)
_monotonic = time.monotonic


def set_attempts(exc: RouteeError, attempts: int) -> None:
    """Record on ``exc`` how many HTTP attempts the call made (``exc.attempts``)."""
    exc.attempts = attempts


def bare_path(path: str) -> str:
    """``path`` without its query string (for logs and errors)."""
    return path.partition("?")[0]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None if unusable.

    Accepts delay-seconds (``"120"``, also ``"1.5"``) and an HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). A date in the past, or a negative number, means 0.
    The value is not capped here: callers cap it with ``RetryPolicy.max_retry_after``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` (in seconds) carried by a 429 or 503 error, if any."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, ServerError) and exc.status == 503:
        return parse_retry_after(_header(exc.headers, "retry-after"))
    return None


def nothing_written(exc: BaseException) -> bool:
    """True when aiohttp gave up before writing any byte of the request.

    aiohttp checks the transport before every write and raises ``ClientConnectionResetError``
    ("Cannot write to closing transport") when the connection was already closing: typically a
    pooled keep-alive connection that the server closed and whose FIN the event loop processed
    between handing the connection out and writing to it. The error arrives either as it is or
    as the cause of a ``ClientOSError`` ("Can not write request body"). Anything else that
    happens after the connection was handed out may follow a write, so it is not "nothing".
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if (
            isinstance(current, aiohttp.ClientConnectionResetError)
            and current.args
            and current.args[0] == _NOTHING_WRITTEN_MESSAGE
        ):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


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
    not be made, or was found closed before anything was written), True when it may have
    reached the server. The error's ``__cause__`` is a :func:`summarise_cause` of ``exc``
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
    if nothing_written(exc):
        return TransportError(
            f"connection closed before the request was written ({_describe(exc)})",
            method=method,
            path=path,
            request_sent=False,
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


class RetryEngine:
    """The retry machinery of one transport view: its policy, quota and tenacity controller.

    Built once per view. The tenacity ``Retrying`` is built here once too and shared by every
    call of the view: its callbacks find the call they decide for through the
    :class:`RetryCallState` (see :class:`_CallState`), and tenacity keeps its own per-run
    bookkeeping thread-local and touches it only inside the synchronous ``iter()``, so calls
    interleaving on one event loop cannot disturb each other. A retried call allocates only its
    :class:`RetryRun` and that state.
    """

    __slots__ = ("backoff", "closed", "policy", "quota", "retrying", "sleep", "stop_attempts")

    def __init__(
        self,
        policy: RetryPolicy,
        quota: RetryQuota | None,
        *,
        sleep: Callable[[float], Awaitable[None]],
        closed: Callable[[], bool],
    ) -> None:
        self.policy = policy
        self.quota = quota if policy.budget is not None else None
        self.sleep = sleep
        self.closed = closed
        self.backoff = wait_random_exponential(
            multiplier=policy.initial_backoff, max=policy.max_backoff
        )
        self.stop_attempts = stop_after_attempt(policy.max_attempts)
        self.retrying = Retrying(
            stop=_stop,
            wait=_wait,
            retry=_retry,
            before_sleep=_before_sleep,
            reraise=True,
        )

    def begin(self, method: str, path: str, *, idempotent: bool, started: float) -> RetryRun:
        """The retry state of one call that started at ``started`` (``time.monotonic()``)."""
        return RetryRun(self, method, path, idempotent=idempotent, started=started)


class _CallState(RetryCallState):
    """tenacity's per-call state, carrying the :class:`RetryRun` its callbacks decide for."""

    def __init__(self, retrying: Retrying, run: RetryRun) -> None:
        super().__init__(retrying, fn=None, args=(), kwargs={})
        self.run = run


def _run_of(state: RetryCallState) -> RetryRun:
    return cast(_CallState, state).run


def _retry(state: RetryCallState) -> bool:
    # The run knows the failure it asked tenacity about: reading it back from the outcome (a
    # concurrent.futures.Future) would take that future's lock twice per callback.
    run = _run_of(state)
    return run.error is not None and run.should_retry(run.error)


def _wait(state: RetryCallState) -> float:
    return _run_of(state).wait(state)


def _stop(state: RetryCallState) -> bool:
    return _run_of(state).stop(state)


def _before_sleep(state: RetryCallState) -> None:
    _run_of(state).before_sleep(state)


def _drop_tracebacks(error: BaseException | None) -> None:
    """Forget the tracebacks of a failure that is behind us and will never be raised.

    They would keep the frames of the failed attempt (and what they held: the answer's
    headers, aiohttp's connection objects) alive while the call sleeps before its retry; the
    error itself stays, small (its status, masked body and headers). Only the ``__cause__``
    chain is ours to clear: ``__context__`` may lead to the caller's own exceptions.
    """
    seen = 0
    while error is not None and seen < 8:
        error.__traceback__ = None
        error = error.__cause__
        seen += 1


class RetryRun:
    """One call's retry state, and the callbacks tenacity runs for it.

    The transport updates ``attempts`` (HTTP requests made to the API), ``before_send`` (the
    current attempt failed before its request was written, e.g. while fetching a token) and
    ``replayed`` (the current attempt used its one token-refresh replay) while attempts run;
    ``ambiguous_seen`` notes that some attempt may have been applied by the server.
    """

    __slots__ = (
        "_decision",
        "_engine",
        "acquired",
        "ambiguous_seen",
        "attempts",
        "before_send",
        "error",
        "idempotent",
        "method",
        "path",
        "replayed",
        "started",
    )

    def __init__(
        self, engine: RetryEngine, method: str, path: str, *, idempotent: bool, started: float
    ) -> None:
        self._engine = engine
        self._decision: Decision | None = None
        self.method = method
        self.path = bare_path(path)
        self.idempotent = idempotent
        self.started = started
        self.attempts = 0
        self.acquired = 0
        self.before_send = False
        self.replayed = False
        self.ambiguous_seen = False
        self.error: BaseException | None = None

    # -- the decision -------------------------------------------------------------------------

    def should_retry(self, exc: BaseException) -> bool:
        """Whether to retry after ``exc`` (never for CancelledError or foreign errors)."""
        self._decision = None
        if not isinstance(exc, RouteeError) or self._engine.closed():
            return False
        decision = classify(exc)
        if decision is None:
            return False
        if self.before_send and decision.ambiguous:
            decision = Decision(f"{decision.reason} before sending", False, decision.timeout)
        if decision.ambiguous:
            self.ambiguous_seen = True  # whatever later attempts say, this one may have applied
        if (
            decision.ambiguous
            and not self.idempotent
            and not self._engine.policy.retry_ambiguous_sends
        ):
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "not retrying %s %s after %s: it may have reached the server "
                    "(retry_ambiguous_sends=False)",
                    self.method,
                    self.path,
                    decision.reason,
                )
            return False
        self._decision = decision
        return True

    def could_retry(self) -> bool:
        """Whether the policy allows any retry at all."""
        return self._engine.policy.max_attempts > 1

    def remaining(self) -> float | None:
        """Seconds left before the policy's deadline (None when there is no deadline)."""
        deadline = self._engine.policy.deadline
        if deadline is None:
            return None
        return deadline - (_monotonic() - self.started)

    # -- tenacity callbacks -------------------------------------------------------------------

    def wait(self, state: RetryCallState) -> float:
        """tenacity's ``wait``: the backoff, at least the server's ``Retry-After``."""
        engine = self._engine
        policy = engine.policy
        seconds = engine.backoff(state)
        error = self.error
        if error is not None:
            retry_after = retry_after_of(error)
            if retry_after is not None:
                seconds = max(seconds, min(retry_after, policy.max_retry_after))
        return float(seconds * policy.sleep_scale)

    def stop(self, state: RetryCallState) -> bool:
        """tenacity's ``stop``: attempts, the deadline and the client's retry budget."""
        engine = self._engine
        if engine.stop_attempts(state):
            return True
        remaining = self.remaining()
        if remaining is not None and state.upcoming_sleep >= remaining:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "not retrying %s %s: the next attempt would start after the deadline",
                    self.method,
                    self.path,
                )
            return True
        quota = engine.quota
        if quota is not None:
            decision = self._decision
            cost = quota.acquire(decision is not None and decision.timeout)
            if cost is None:
                if logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "not retrying %s %s: the client's retry budget is exhausted",
                        self.method,
                        self.path,
                    )
                return True
            self.acquired = cost
        return False

    def before_sleep(self, state: RetryCallState) -> None:
        """tenacity's ``before_sleep``: one INFO record per retry."""
        if logger.isEnabledFor(logging.INFO):
            decision = self._decision
            logger.info(
                "retrying %s %s in %.3fs: try %d of %d failed (%s)",
                self.method,
                self.path,
                state.upcoming_sleep,
                state.attempt_number,
                self._engine.policy.max_attempts,
                decision.reason if decision is not None else "error",
            )

    # -- running ------------------------------------------------------------------------------

    async def run(self, attempt: Callable[[], Awaitable[Any]], first_error: BaseException) -> Any:
        """Retry ``attempt`` with tenacity, ``first_error`` being the failure of attempt 1.

        Returns the first successful result; raises the last error when tenacity stops.

        tenacity's state machine (``Retrying.iter``) makes every decision about a failure: the
        retry predicate, stop, wait, ``before_sleep`` and the re-raise. The loop that awaits the
        sleeps and the attempts is ``AsyncRetrying.__call__``'s, written out: ``AsyncRetrying``
        wraps each of its callbacks into a coroutine function on every iteration (introspecting
        each with ``inspect``), which costs more than the rest of a retry together, and ours are
        all synchronous anyway. Two more savings: the failed first attempt (made by the
        transport itself) enters the state as attempt 1's outcome, so tenacity starts with the
        decision about it; and a success ends the loop without one more ``iter()``, whose only
        possible answer (the retry predicate never retries a result) is that result.
        """
        engine = self._engine
        retrying = engine.retrying
        retrying.begin()
        state = _CallState(retrying, self)
        self.error = first_error
        state.set_exception((type(first_error), first_error, first_error.__traceback__))
        while True:
            try:
                do = retrying.iter(state)  # a DoSleep, or it raises the last error
            finally:
                error, self.error = self.error, None
            if not isinstance(do, DoSleep):
                raise RuntimeError(f"tenacity answered a failure with {do!r}")
            _drop_tracebacks(error)
            state.prepare_for_next_attempt()
            await engine.sleep(do)
            try:
                result = await attempt()
            except BaseException as exc:  # tenacity decides (CancelledError is never retried)
                self.error = exc
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                break
        quota = engine.quota
        if quota is not None and self.acquired:
            quota.release(self.acquired)
        return result
