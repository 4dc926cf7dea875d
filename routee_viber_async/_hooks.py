"""Observability hooks: objects told of each SDK call and each HTTP attempt.

``RouteeViberClient(hooks=[...])`` takes any objects with some of the methods of :class:`Hooks`
(subclass it and override what you need). They are called synchronously, inside the task of
the call they describe, so context variables (and OpenTelemetry's current span) flow:

- ``call_started(call)`` / ``call_ended(call, state, error)``: one SDK call
  (``routee.messages.send``, ``routee.tracking.wait``, ...);
- ``attempt_started(attempt)`` / ``attempt_ended(attempt, state, error)``: one HTTP request of a
  call (a retry or a replay after a refused token is an attempt of its own);
- ``retry_scheduled(retry)``: a failed attempt will be tried again after ``retry.delay`` s;
- ``token_fetch_started(fetch)`` / ``token_fetch_ended(fetch, state, error)``: a new access
  token is being fetched;
- ``rate_limit_waited(seconds)``: a request waited this long for a rate limiter.

Whatever a ``*_started`` method returns is given back as ``state`` to the matching
``*_ended``. A hook never changes a call: one that raises is logged (once per hook and
method) and ignored. The events carry no secret: no token, pin, template parameter or
credential.

Attempt-level events come from the transport, in HTTP terms only; call-level events from the
resources. With no hooks, the client does no hook work at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ._errors import RouteeError, outcome_unknown

__all__ = [
    "AttemptEvent",
    "CallEvent",
    "HookDispatcher",
    "Hooks",
    "RetryEvent",
    "TokenFetchEvent",
    "as_dispatcher",
    "public_url",
    "url_parts",
]

logger = logging.getLogger("routee_viber_async")
_clock = time.perf_counter

#: The methods a hook may have.
_METHODS = (
    "call_started",
    "call_ended",
    "attempt_started",
    "attempt_ended",
    "retry_scheduled",
    "token_fetch_started",
    "token_fetch_ended",
    "rate_limit_waited",
)


class CallEvent:
    """One SDK call: ``name`` is ``routee.<resource>.<method>`` (``routee.messages.send``).

    On sends, ``seq`` (set before the first attempt) and, once Routee accepted it,
    ``tracking_id``; at the end, ``attempts`` (HTTP requests made) and ``outcome``
    (``"ok"``, ``"failed"`` or ``"unknown"``: it may have reached Routee). ``duration`` is
    set at the end, in seconds. ``log_extra`` holds the fields added to the SDK's log records
    during the call (a hook may add its own, such as trace ids).
    """

    __slots__ = (
        "attempts",
        "duration",
        "is_send",
        "log_extra",
        "method",
        "name",
        "outcome",
        "resource",
        "seq",
        "started",
        "tracking_id",
    )

    def __init__(
        self, resource: str, method: str, *, seq: int | None = None, is_send: bool = False
    ) -> None:
        self.resource = resource
        self.method = method
        self.name = f"routee.{resource}.{method}"
        self.is_send = is_send
        self.seq = seq
        self.tracking_id: str | None = None
        self.attempts: int | None = None
        self.outcome: str | None = None
        self.started = _clock()
        self.duration: float | None = None
        self.log_extra: dict[str, object] = {} if seq is None else {"seq": seq}

    def __repr__(self) -> str:
        return f"<CallEvent {self.name} seq={self.seq} outcome={self.outcome}>"


class AttemptEvent:
    """One HTTP request: ``method``, ``url`` (no query string, no credentials),
    ``server_address``, ``server_port``, ``number`` (1 for the call's first request; a retry or
    a replay after a refused token counts up). At the end: ``status`` (None without an answer),
    ``error_type`` (the status as text for an error answer, else the exception's class name)
    and ``duration`` in seconds."""

    __slots__ = (
        "duration",
        "error_type",
        "method",
        "number",
        "server_address",
        "server_port",
        "started",
        "status",
        "url",
    )

    def __init__(
        self, method: str, url: str, server_address: str, server_port: int, number: int
    ) -> None:
        self.method = method
        self.url = url
        self.server_address = server_address
        self.server_port = server_port
        self.number = number
        self.status: int | None = None
        self.error_type: str | None = None
        self.started = _clock()
        self.duration: float | None = None

    @property
    def resend_count(self) -> int:
        """How many requests of this call came before this one (0 on the first)."""
        return self.number - 1

    def __repr__(self) -> str:
        return f"<AttemptEvent {self.method} {self.url} #{self.number} status={self.status}>"


class RetryEvent:
    """A failed try of ``method`` ``path`` is retried after ``delay`` seconds because of
    ``reason`` (``"HTTP 429"``, ``"HTTP 503"``, ``"timeout"``, ``"connection error"``, ...);
    ``attempt`` is the number of tries made so far."""

    __slots__ = ("attempt", "delay", "method", "path", "reason")

    def __init__(self, method: str, path: str, delay: float, reason: str, attempt: int) -> None:
        self.method = method
        self.path = path
        self.delay = delay
        self.reason = reason
        self.attempt = attempt

    def __repr__(self) -> str:
        return f"<RetryEvent {self.method} {self.path} in {self.delay:.3f}s ({self.reason})>"


class TokenFetchEvent:
    """A new access token is fetched from ``url`` (no query string, no credentials);
    ``reason`` is ``"initial"``, ``"refresh"`` (ahead of expiry) or ``"refused"`` (the API
    refused the current one). At the end: ``error_type`` on failure, ``duration`` in
    seconds."""

    __slots__ = (
        "duration",
        "error_type",
        "reason",
        "server_address",
        "server_port",
        "started",
        "url",
    )

    def __init__(self, url: str, server_address: str, server_port: int, reason: str) -> None:
        self.url = url
        self.server_address = server_address
        self.server_port = server_port
        self.reason = reason
        self.error_type: str | None = None
        self.started = _clock()
        self.duration: float | None = None

    def __repr__(self) -> str:
        return f"<TokenFetchEvent {self.url} ({self.reason})>"


class Hooks:
    """A base class of hooks whose every method does nothing: override the ones you need.

    Any object with some of these methods works as a hook; a method left as this class's
    no-op is never called.
    """

    def call_started(self, call: CallEvent) -> Any:
        """An SDK call starts; the return value comes back as ``state`` to ``call_ended``."""

    def call_ended(self, call: CallEvent, state: Any, error: BaseException | None) -> None:
        """An SDK call ended, with ``error`` or (None) successfully."""

    def attempt_started(self, attempt: AttemptEvent) -> Any:
        """An HTTP request goes out (it holds a concurrency slot from now on)."""

    def attempt_ended(self, attempt: AttemptEvent, state: Any, error: BaseException | None) -> None:
        """An HTTP request got its answer (``attempt.status``) or failed without one."""

    def retry_scheduled(self, retry: RetryEvent) -> None:
        """A failed try will be retried after ``retry.delay`` seconds."""

    def token_fetch_started(self, fetch: TokenFetchEvent) -> Any:
        """A new access token is being fetched."""

    def token_fetch_ended(
        self, fetch: TokenFetchEvent, state: Any, error: BaseException | None
    ) -> None:
        """The token fetch ended, with ``error`` or (None) a new token."""

    def rate_limit_waited(self, seconds: float) -> None:
        """A request waited ``seconds`` for a rate limiter before going out."""


def _error_type(error: BaseException) -> str:
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return str(status)
    return type(error).__name__


def _send_outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, RouteeError):
        return "unknown" if outcome_unknown(error) else "failed"
    # Cancelled (or broken) in the middle: it may have reached Routee.
    return "unknown"


#: The hooks that implement one method, with that method bound.
_Bound = tuple[tuple[object, Any], ...]


class HookDispatcher:
    """Calls every hook's method for each event, and keeps a hook's failure from the call.

    Each method list holds only the hooks that implement it (not with :class:`Hooks`'s no-op).
    """

    __slots__ = (
        "_attempt_ended",
        "_attempt_started",
        "_call_ended",
        "_call_started",
        "_rate_limit_waited",
        "_retry_scheduled",
        "_token_fetch_ended",
        "_token_fetch_started",
        "_told",
        "hooks",
    )

    def __init__(self, hooks: Iterable[object]) -> None:
        self.hooks = tuple(hooks)
        self._told: set[tuple[int, str]] = set()
        self._call_started = self._implementing("call_started")
        self._call_ended = self._implementing("call_ended")
        self._attempt_started = self._implementing("attempt_started")
        self._attempt_ended = self._implementing("attempt_ended")
        self._retry_scheduled = self._implementing("retry_scheduled")
        self._token_fetch_started = self._implementing("token_fetch_started")
        self._token_fetch_ended = self._implementing("token_fetch_ended")
        self._rate_limit_waited = self._implementing("rate_limit_waited")

    def _implementing(self, name: str) -> _Bound:
        """``(hook, bound method)`` of every hook that has ``name``, but not Hooks's no-op."""
        base = getattr(Hooks, name)
        bound = []
        for hook in self.hooks:
            method = getattr(hook, name, None)
            if callable(method) and getattr(method, "__func__", None) is not base:
                bound.append((hook, method))
        return tuple(bound)

    def _failed(self, hook: object, name: str) -> None:
        """Log a hook's exception once per hook and method; it is otherwise ignored."""
        key = (id(hook), name)
        if key in self._told:
            return
        self._told.add(key)
        logger.warning(
            "hook %s.%s raised; ignored (said once per hook and method)",
            type(hook).__name__,
            name,
            exc_info=True,
        )

    def _started(self, name: str, hooks: _Bound, event: object) -> dict[int, Any]:
        """Call each hook's ``name``; their states by hook (by ``id``), for the ``*_ended``."""
        states = {}
        for hook, method in hooks:
            try:
                states[id(hook)] = method(event)
            except Exception:
                self._failed(hook, name)
        return states

    def _ended(
        self,
        name: str,
        hooks: _Bound,
        event: object,
        states: dict[int, Any],
        error: BaseException | None,
    ) -> None:
        # In the reverse order of the starts: a hook that entered a context leaves it last.
        for hook, method in reversed(hooks):
            try:
                method(event, states.get(id(hook)), error)
            except Exception:
                self._failed(hook, name)

    # -- calls --------------------------------------------------------------------------------

    def call_started(self, call: CallEvent) -> dict[int, Any]:
        return self._started("call_started", self._call_started, call)

    def call_ended(
        self, call: CallEvent, states: dict[int, Any], error: BaseException | None
    ) -> None:
        call.duration = _clock() - call.started
        if error is not None and call.attempts is None:
            call.attempts = getattr(error, "attempts", None)
        if call.is_send:
            call.outcome = _send_outcome(error)
        self._ended("call_ended", self._call_ended, call, states, error)

    # -- attempts -----------------------------------------------------------------------------

    def attempt_started(self, attempt: AttemptEvent) -> dict[int, Any]:
        return self._started("attempt_started", self._attempt_started, attempt)

    def attempt_ended(
        self, attempt: AttemptEvent, states: dict[int, Any], error: BaseException | None
    ) -> None:
        attempt.duration = _clock() - attempt.started
        if error is not None:
            attempt.error_type = _error_type(error)
        elif attempt.status is not None and attempt.status >= 400:
            attempt.error_type = str(attempt.status)
        self._ended("attempt_ended", self._attempt_ended, attempt, states, error)

    def retry_scheduled(self, retry: RetryEvent) -> None:
        for hook, method in self._retry_scheduled:
            try:
                method(retry)
            except Exception:
                self._failed(hook, "retry_scheduled")

    # -- tokens and limits --------------------------------------------------------------------

    def token_fetch_started(self, fetch: TokenFetchEvent) -> dict[int, Any]:
        return self._started("token_fetch_started", self._token_fetch_started, fetch)

    def token_fetch_ended(
        self, fetch: TokenFetchEvent, states: dict[int, Any], error: BaseException | None
    ) -> None:
        fetch.duration = _clock() - fetch.started
        if error is not None:
            fetch.error_type = _error_type(error)
        self._ended("token_fetch_ended", self._token_fetch_ended, fetch, states, error)

    def rate_limit_waited(self, seconds: float) -> None:
        for hook, method in self._rate_limit_waited:
            try:
                method(seconds)
            except Exception:
                self._failed(hook, "rate_limit_waited")

    def __repr__(self) -> str:
        return f"<HookDispatcher {[type(h).__name__ for h in self.hooks]}>"


def as_dispatcher(hooks: object) -> HookDispatcher | None:
    """``RouteeViberClient(hooks=...)`` checked: None (or empty) gives no dispatcher at all."""
    if hooks is None:
        return None
    if isinstance(hooks, str | bytes) or not isinstance(hooks, Iterable):
        raise TypeError(f"hooks must be a list of hook objects, not {type(hooks).__name__}")
    items = list(hooks)
    for hook in items:
        if not any(callable(getattr(hook, name, None)) for name in _METHODS):
            raise TypeError(
                f"{type(hook).__name__} is not a hook: it has none of the methods of "
                "routee_viber_async.Hooks"
            )
    return HookDispatcher(items) if items else None


def url_parts(url: str) -> tuple[str, str, int]:
    """``(origin, host, port)`` of ``url``: the origin without credentials (for ``url.full``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if parts.port is None else f"{shown}:{parts.port}"
    return f"{parts.scheme}://{netloc}", host, port


def public_url(url: str) -> str:
    """``url`` without credentials, query string or fragment."""
    origin, _, _ = url_parts(url)
    return origin + urlsplit(url).path
