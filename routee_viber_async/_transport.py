"""The HTTP transport: session and pool, auth, the concurrency bound and retries.

It knows nothing of Viber: resources hand it a method, a path, query parameters and JSON bytes,
and get back decoded JSON or a typed :class:`~routee_viber_async.RouteeError`.

One call goes like this:

1. A token: the cached one unless it is due for refresh (one fetch for all waiting callers; the
   fetch holds no API slot).
2. A slot of the semaphore (``max_concurrency`` in-flight API requests at most), held only for
   the HTTP exchange itself: never while fetching a token or sleeping before a retry.
3. The first attempt runs directly, without tenacity and written out in
   :meth:`Transport.request_counted` itself (the happy path stays as cheap as a hand-written
   aiohttp call: ``benchmarks/`` measures it). A 401, or a 403 on a token older than
   ``forbidden_refresh_after``, refreshes the token once and replays the request once.
4. If the attempt failed with a retryable error, tenacity takes over (``_retry.RetryRun``):
   backoff with full jitter and ``Retry-After``, ``max_attempts``, the deadline, the
   client-wide retry budget, and the ambiguous-send rule.

Before a POST or PATCH reuses a pooled keep-alive connection (our own session only), the
connection is checked: one the server has already closed (its FIN is waiting in the socket) is
dropped instead of written to, so the classic keep-alive race cannot turn a send into an
ambiguous failure. Should aiohttp still find the connection closing before it writes a byte,
the error says ``request_sent=False`` and the send is retried whatever the ambiguity rule. Our
own connections also read in 64 KiB chunks rather than asyncio's 256 KiB, which spares every
answer three system calls (:data:`_READ_SIZE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import Mapping
from functools import partial
from http import HTTPStatus
from ssl import SSLContext
from typing import Any

import aiohttp
import attrs
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict, CIMultiDictProxy

from . import _json
from ._auth import AccessToken, TokenManager, TokenProvider
from ._config import RetryPolicy
from ._errors import (
    APIStatusError,
    AuthenticationError,
    ClientClosedError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    RouteeError,
    ServerError,
    TransportError,
    UnprocessableError,
    ValidationError,
    ValidationIssue,
    scrub_error,
)
from ._ratelimit import RateLimiter, pause_on_429
from ._retry import (
    RetryEngine,
    RetryQuota,
    RetryRun,
    bare_path,
    parse_retry_after,
    set_attempts,
    transport_error_from,
)
from ._version import __version__

__all__ = ["DEFAULT_MAX_RESPONSE_SIZE", "DEFAULT_USER_AGENT", "Transport"]

logger = logging.getLogger("routee_viber_async")

DEFAULT_USER_AGENT = f"routee-viber-async/{__version__}"
#: The largest answer read by default (bytes); a larger one is a ResponseTooLargeError.
DEFAULT_MAX_RESPONSE_SIZE = 1024 * 1024
#: How long an idle pooled connection is kept (aiohttp's default).
KEEPALIVE_TIMEOUT = 15.0

_DEFAULT_RETRY = RetryPolicy()
_NON_IDEMPOTENT = frozenset({"POST", "PATCH"})
_MAX_TEXT_BODY = 4096
_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableError,
}
_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
_monotonic = time.monotonic
_DEBUG = logging.DEBUG
_INFO = logging.INFO


# -- the connection pool ----------------------------------------------------------------------

_POLL = getattr(select, "poll", None)
_POLL_EVENTS = getattr(select, "POLLIN", 1)

#: One poll object per descriptor number, registered once. A poll object is only the list of
#: (descriptor, events) pairs it hands to poll(2) on each call, so it serves whichever socket
#: holds that number now; and a number belongs to one socket (one event loop) at a time.
_POLLERS: dict[int, Any] = {}


def _peer_closed(transport: asyncio.BaseTransport) -> bool:
    """True when an idle pooled connection has something to read: the peer closed it (FIN,
    RST) or sent something unsolicited; either way it must not carry a new request."""
    sock = transport.get_extra_info("socket")
    if sock is None or _POLL is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        poller = _POLLERS.get(fd)
        if poller is None:
            poller = _POLLERS[fd] = _POLL()
            poller.register(fd, _POLL_EVENTS)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return False


#: Bytes asked of the socket per read. asyncio asks for ``max_size`` = 256 KiB and allocates
#: that much for every read before shrinking it to what arrived: glibc serves a block that
#: size with mmap(), so every HTTP answer costs an mmap, an mremap, an munmap and a page fault
#: (measured here: about 13 µs of system time per send). 64 KiB comes from the heap. Routee's
#: answers are far below that; a larger one just takes more reads.
_READ_SIZE = 64 * 1024


def _limit_read_size(transport: asyncio.BaseTransport) -> None:
    """Lower the read size of a connection (TLS: of its SSL protocol, which reads the same
    way) to :data:`_READ_SIZE`; a no-op where there is no such knob (uvloop) or it is set."""
    reader: Any = getattr(transport, "_ssl_protocol", None) or transport
    if getattr(reader, "max_size", 0) > _READ_SIZE:
        with contextlib.suppress(AttributeError):  # once per connection
            reader.max_size = _READ_SIZE


class _GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that never hands out a pooled connection the server already closed.

    aiohttp drops a pooled connection once the event loop has *processed* the server's FIN;
    when the FIN is still waiting in the socket (the loop was busy), aiohttp would write the
    request into a dead connection and fail with ``ServerDisconnectedError``, which is
    indistinguishable from a server that received the request and died. A zero-timeout
    ``poll()`` before a POST or PATCH goes out catches that case first: one system call, 0.45 µs
    in a tight loop but about 2 µs between real sends (cold kernel paths), some 2 % of a send's
    CPU. No cheaper signal is equivalent: until the loop has read the socket, only the kernel
    knows about the FIN. The connector also lowers each new connection's read size (see
    :data:`_READ_SIZE`).
    """

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        conn = await _tcp_connect(self, req, traces, timeout)
        # aiohttp itself replays an idempotent request once when a reused connection turns
        # out dead, and our policy retries them anyway: only POST and PATCH are checked.
        if req.method in _NON_IDEMPOTENT:
            transport = conn.transport
            if transport is not None and _peer_closed(transport):
                return await self._replace_closed(conn, req, traces, timeout)
        return conn

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> ResponseHandler:
        # Where aiohttp opens a connection (and only then): once per connection, not per
        # request.
        protocol = await _tcp_create_connection(self, req, traces, timeout)
        transport = protocol.transport
        if transport is not None:
            _limit_read_size(transport)
        return protocol

    async def _replace_closed(
        self,
        conn: Connection,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        """Drop ``conn`` (the server closed it) and get another, checked the same way."""
        for _ in range(3):
            conn.close()
            if logger.isEnabledFor(_DEBUG):
                logger.debug("dropped a pooled connection that the server had closed")
            conn = await _tcp_connect(self, req, traces, timeout)
            transport = conn.transport
            if transport is None or not _peer_closed(transport):
                return conn
        conn.close()
        if logger.isEnabledFor(_DEBUG):
            logger.debug("dropped a pooled connection that the server had closed")
        return await _tcp_connect(self, req, traces, timeout)


_tcp_connect = aiohttp.TCPConnector.connect
_tcp_create_connection = aiohttp.TCPConnector._create_connection


# -- errors -----------------------------------------------------------------------------------


class _TransportClosedError(TransportError):
    """The transport was closed before this request could be sent (not an HTTP attempt)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            "the transport is closed", method=method, path=bare_path(path), request_sent=False
        )


def _error_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError:
        text = raw.decode("utf-8", "replace")
        return text if len(text) <= _MAX_TEXT_BODY else text[:_MAX_TEXT_BODY] + "…"


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _validation_error(
    body: Any, headers: Mapping[str, str], method: str, path: str
) -> ValidationError:
    code = developer_message = None
    issues: list[ValidationIssue] = []
    if isinstance(body, Mapping):
        code = _text(body.get("code"))
        developer_message = _text(body.get("developerMessage")) or _text(body.get("message"))
        raw_issues = body.get("validationIssues")
        if isinstance(raw_issues, list):
            for item in raw_issues:
                if isinstance(item, Mapping):
                    issues.append(
                        ValidationIssue(
                            _text(item.get("code")) or "UNKNOWN", _text(item.get("message")) or ""
                        )
                    )
    if not issues:
        issues.append(
            ValidationIssue("BAD_REQUEST", developer_message or "the server refused the request")
        )
    return ValidationError(
        issues,
        code=code,
        developer_message=developer_message,
        status=400,
        body=body,
        headers=headers,
        method=method,
        path=path,
    )


def _status_error(
    status: int, raw: bytes, headers: Mapping[str, str], method: str, path: str
) -> RouteeError:
    """The typed error for a non-2xx answer (body masked, query dropped, no secret headers)."""
    path = bare_path(path)
    body = _error_body(raw)
    if status == 400:
        return _validation_error(body, headers, method, path)
    code = developer_message = None
    if isinstance(body, Mapping):
        code = _text(body.get("code")) or _text(body.get("error"))
        developer_message = _text(body.get("developerMessage")) or _text(body.get("message"))
    # Routee's own words first ("Sender other was not found."), the status phrase otherwise.
    message = developer_message or _PHRASES.get(status, "unexpected status")
    if code:
        message = f"{message} ({code})"
    details: dict[str, Any] = {
        "status": status,
        "code": code,
        "developer_message": developer_message,
        "body": body,
        "headers": headers,
        "method": method,
        "path": path,
    }
    if status == 429:
        return RateLimitError(
            message, retry_after=parse_retry_after(headers.get("Retry-After")), **details
        )
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if 500 <= status < 600 else APIStatusError
    return cls(message, **details)


def _as_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    return aiohttp.ClientTimeout(total=float(timeout))


def _clip_timeout(timeout: aiohttp.ClientTimeout, limit: float | None) -> aiohttp.ClientTimeout:
    if limit is None or (timeout.total is not None and timeout.total <= limit):
        return timeout
    return attrs.evolve(timeout, total=max(limit, 0.001))


#: The JSON decoder bound once, for the 2xx answers decoded on the hot path.
_loads = _json.loads


def _answer(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    method: str,
    path: str,
    attempt: int,
    debug_started: float | None,
) -> Any:
    """The decoded JSON of a 2xx answer (None if empty), or the typed error of any other.

    It takes the status and headers rather than the response: an error raised here keeps this
    frame alive in its traceback, and a call waiting to retry should not keep the whole
    response (its stream, timers, request info) alive with it.
    """
    if debug_started is not None:
        logger.debug(
            "%s %s -> %d (attempt %d, %.1f ms)",
            method,
            bare_path(path),
            status,
            attempt,
            (_monotonic() - debug_started) * 1000,
        )
    if 200 <= status < 300:
        if not raw:
            return None
        try:
            return _loads(raw)
        except _json.JSONDecodeError:
            pass  # raised below, so that the decoder's error is not chained
        raise InvalidResponseError(
            "the answer is not valid JSON",
            status=status,
            body=_error_body(raw),
            headers=dict(headers),
            method=method,
            path=bare_path(path),
        )
    raise _status_error(status, raw, headers, method, path)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, method: str, path: str) -> bytes:
    """The body of an answer, at most ``limit`` bytes, or a :class:`ResponseTooLargeError`.

    A Content-Length within the limit is read at once; one over it is refused unread; an answer
    without one is read chunk by chunk, counting, and refused as soon as it grows past the
    limit. A refused answer's connection is closed.
    """
    length = resp.content_length
    if length is not None and length <= limit:
        return await resp.read()
    if length is None:
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_any():
            total += len(chunk)
            if total > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    resp.close()
    raise ResponseTooLargeError(
        status=resp.status, limit=limit, method=method, path=bare_path(path)
    )


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# -- state shared by a transport and its views ------------------------------------------------


class _Shared:
    __slots__ = (
        "base_url",
        "closed",
        "forbidden_refresh_after",
        "header_token",
        "headers_json",
        "headers_plain",
        "max_concurrency",
        "max_response_size",
        "owns_session",
        "quota",
        "rate_limiter",
        "semaphore",
        "session",
        "session_timeout",
        "sleepers",
        "ssl_context",
        "tokens",
        "user_agent",
    )

    def __init__(
        self,
        *,
        tokens: TokenManager,
        base_url: str,
        max_concurrency: int,
        session: aiohttp.ClientSession | None,
        session_timeout: aiohttp.ClientTimeout,
        quota: RetryQuota | None,
        forbidden_refresh_after: float,
        user_agent: str,
        ssl_context: SSLContext | bool = True,
        max_response_size: int,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.rate_limiter = rate_limiter  # acquired before every HTTP attempt
        self.tokens = tokens
        self.max_response_size = max_response_size
        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.session = session
        self.owns_session = session is None
        self.session_timeout = session_timeout
        self.quota = quota
        self.forbidden_refresh_after = forbidden_refresh_after
        self.user_agent = user_agent
        self.ssl_context = ssl_context  # our connector's ssl= (True: default verification)
        self.closed = False
        self.sleepers: set[asyncio.Future[None]] = set()
        self.header_token: AccessToken | None = None
        self.headers_json: CIMultiDict[str] = CIMultiDict()
        self.headers_plain: CIMultiDict[str] = CIMultiDict()

    def open_session(self) -> aiohttp.ClientSession:
        """Create our session (inside the running loop, at first use)."""
        connector = _GuardedConnector(
            # One connection more than API slots, so that a token fetch never queues behind
            # API requests for a connection.
            limit=self.max_concurrency + 1,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
            ttl_dns_cache=300,
            ssl=self.ssl_context,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.session_timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=self.static_headers(),
        )
        self.session = session
        return session

    def static_headers(self) -> dict[str, str]:
        """The headers every request carries whatever the token."""
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    def set_token(self, token: AccessToken) -> None:
        """Rebuild the request headers for a new token (once per token, not per request).

        They are ``CIMultiDict`` already, the type aiohttp turns any other mapping into on
        every request. On our own session the static headers are the session's defaults, which
        aiohttp merges in one C-level copy instead of one Python loop turn per header.
        """
        base = {"Authorization": f"Bearer {token.value}"}
        if not self.owns_session:
            base.update(self.static_headers())
        self.headers_plain = CIMultiDict(base)
        self.headers_json = CIMultiDict(base, **{"Content-Type": "application/json"})
        self.header_token = token

    def is_closed(self) -> bool:
        return self.closed

    async def sleep(self, delay: float) -> None:
        """Sleep before a retry; cut short when the transport is closed.

        A future that a timer or :meth:`wake_sleepers` completes: no task cancellation and no
        exception on the way out, unlike ``asyncio.timeout`` around an event.
        """
        if delay <= 0 or self.closed:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(delay, _wake, waiter)
        self.sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.sleepers.discard(waiter)

    def wake_sleepers(self) -> None:
        """End every retry sleep at once (the transport is closing)."""
        for waiter in self.sleepers:
            _wake(waiter)


# -- the transport ----------------------------------------------------------------------------


class Transport:
    """Sends API calls with auth, a concurrency bound and retries; knows nothing of Viber.

    Create one per client (it owns a connection pool), use it from one event loop, and
    :meth:`close` it. :meth:`with_options` gives views with other retry or timeout settings that
    share the pool, the token, the semaphore and the retry budget.
    """

    __slots__ = (
        "_engine",
        "_first_timeout",
        "_is_view",
        "_retry",
        "_shared",
        "_timeout",
    )

    def __init__(
        self,
        *,
        token_provider: TokenProvider,
        base_url: str,
        auth_url: str,
        max_concurrency: int = 100,
        retry: RetryPolicy = _DEFAULT_RETRY,
        timeout: float | aiohttp.ClientTimeout = 10.0,
        session: aiohttp.ClientSession | None = None,
        forbidden_refresh_after: float = 60.0,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: SSLContext | bool = True,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if forbidden_refresh_after < 0:
            raise ValueError("forbidden_refresh_after must be >= 0")
        if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
            kind = type(max_response_size).__name__
            raise TypeError(f"max_response_size must be a number of bytes, not {kind}")
        if max_response_size < 1:
            raise ValueError(f"max_response_size must be >= 1 byte, got {max_response_size}")
        client_timeout = _as_timeout(timeout)
        self._shared = _Shared(
            tokens=TokenManager(token_provider, auth_url),
            base_url=base_url.rstrip("/"),
            max_concurrency=max_concurrency,
            session=session,
            session_timeout=client_timeout,
            quota=RetryQuota(retry.budget) if retry.budget is not None else None,
            forbidden_refresh_after=forbidden_refresh_after,
            user_agent=user_agent,
            ssl_context=ssl_context,
            max_response_size=max_response_size,
            rate_limiter=rate_limiter,
        )
        self._configure(retry, client_timeout, is_view=False)

    def _configure(
        self, retry: RetryPolicy, timeout: aiohttp.ClientTimeout, *, is_view: bool
    ) -> None:
        shared = self._shared
        self._retry = retry
        self._timeout = timeout
        self._first_timeout = _clip_timeout(timeout, retry.deadline)
        self._engine = RetryEngine(retry, shared.quota, sleep=shared.sleep, closed=shared.is_closed)
        self._is_view = is_view

    # -- public API ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the transport (or the transport this is a view of) was closed."""
        return self._shared.closed

    @property
    def retry(self) -> RetryPolicy:
        """This view's retry policy."""
        return self._retry

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        """This view's per-attempt timeout."""
        return self._timeout

    @property
    def base_url(self) -> str:
        """The API's base URL (no trailing slash)."""
        return self._shared.base_url

    @property
    def auth_url(self) -> str:
        """The token endpoint given to the token provider."""
        return self._shared.tokens.auth_url

    @property
    def max_concurrency(self) -> int:
        """The bound on in-flight API requests (shared by all views)."""
        return self._shared.max_concurrency

    def with_options(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> Transport:
        """A view with other settings, sharing the pool, token, semaphore and retry budget.

        Closing a view does nothing; closing the transport it came from closes all views.
        """
        view = object.__new__(Transport)
        view._shared = self._shared
        view._configure(
            retry if retry is not None else self._retry,
            _as_timeout(timeout) if timeout is not None else self._timeout,
            is_view=True,
        )
        return view

    async def close(self) -> None:
        """Close the pool (unless the session is the caller's). Idempotent; no-op on views.

        Calls still in flight end with a :class:`TransportError` and are not retried.
        """
        if self._is_view:
            return
        shared = self._shared
        if shared.closed:
            return
        shared.closed = True
        shared.wake_sleepers()
        session = shared.session
        if session is not None and shared.owns_session:
            await session.close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._shared.closed else "open"
        view = " view" if self._is_view else ""
        return f"<Transport{view} {self._shared.base_url} {state}>"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        idempotent: bool | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Any:
        """Send one API call; return the decoded JSON of the 2xx answer (None if empty).

        ``body`` is JSON already encoded (sent as ``application/json``). ``idempotent``
        defaults from the method (POST and PATCH are not). ``secrets`` are values of this
        request that must not outlive the wire (a pin): they and the access token are scrubbed
        out of any server text an error keeps. Raises a
        :class:`~routee_viber_async.RouteeError` whose ``attempts`` tells how many HTTP
        requests were made (:class:`~routee_viber_async.ClientClosedError` once closed).
        """
        data, _ = await self.request_counted(
            method, path, params=params, body=body, idempotent=idempotent, secrets=secrets
        )
        return data

    async def request_counted(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        idempotent: bool | None = None,
        secrets: tuple[str, ...] = (),
    ) -> tuple[Any, int]:
        """Like :meth:`request`, and also return how many HTTP attempts were made."""
        shared = self._shared
        if shared.closed:
            raise ClientClosedError(f"{method} {bare_path(path)}: the client is closed")
        session = shared.session
        if session is None:
            session = shared.open_session()
        url = shared.base_url + path
        started = _monotonic()
        tokens = shared.tokens
        token = tokens.token
        if token is None or started >= tokens.refresh_at:
            try:
                token = await tokens.get(session)
            except RouteeError as exc:
                return await self._recover(
                    method, path, url, params, body, idempotent, started, None, exc, 0, secrets
                )
        if token is not shared.header_token:
            shared.set_token(token)
        # The first attempt: the same exchange as _send(), written out here so that the happy
        # path runs without one more coroutine in between.
        debug_started = _monotonic() if logger.isEnabledFor(_DEBUG) else None
        # acquire()/release() rather than ``async with``: one coroutine object less per call,
        # which with thousands of queued calls is measurably less garbage-collector work.
        if shared.rate_limiter is not None:
            await shared.rate_limiter.acquire()
        semaphore = shared.semaphore
        try:
            await semaphore.acquire()
            try:
                session = shared.session
                if shared.closed or session is None:
                    raise _TransportClosedError(method, path)
                # The headers are taken once the slot is ours: a call that queued while another
                # one replaced a refused token goes out with the new token, not into a 401.
                # No local holds them: a traceback's frames (which error trackers record with
                # their locals) must not carry the Authorization header.
                token = shared.header_token or token
                failure = None
                try:
                    async with session.request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers=shared.headers_plain if body is None else shared.headers_json,
                        timeout=self._first_timeout,
                        allow_redirects=False,
                    ) as resp:
                        # _read_capped's first case, written out for the common answer.
                        length = resp.content_length
                        limit = shared.max_response_size
                        if length is not None and length <= limit:
                            raw = await resp.read()
                        else:
                            raw = await _read_capped(resp, limit, method, path)
                except (aiohttp.ClientError, OSError) as exc:
                    failure = self._failed(exc, method, path, 1, debug_started)
                if failure is not None:  # raised here: aiohttp's error must not be its context
                    raise failure
            finally:
                semaphore.release()
            status, answer_headers = resp.status, resp.headers
            del resp  # a retry may wait long: keep nothing of the answer (see the except below)
            if status == 200 and raw and debug_started is None:
                try:  # the common answer, decoded here rather than by one more call
                    data = _loads(raw)
                except _json.JSONDecodeError:
                    data = _answer(status, answer_headers, raw, method, path, 1, debug_started)
            else:
                data = _answer(status, answer_headers, raw, method, path, 1, debug_started)
        except RouteeError as exc:
            raw, answer_headers = b"", _NO_HEADERS  # a retry may wait: keep nothing of the answer
            sent = 0 if isinstance(exc, _TransportClosedError) else 1
            return await self._recover(
                method, path, url, params, body, idempotent, started, token, exc, sent, secrets
            )
        quota = shared.quota
        if quota is not None and quota.level < quota.capacity:  # something to refund
            quota.on_first_success()
        return data, 1

    # -- one HTTP exchange --------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        attempt_timeout: aiohttp.ClientTimeout,
        attempt: int,
    ) -> Any:
        """One attempt after the first (retries and the token-refresh replay)."""
        shared = self._shared
        debug_started = _monotonic() if logger.isEnabledFor(_DEBUG) else None
        semaphore = shared.semaphore
        await semaphore.acquire()
        try:
            session = shared.session
            if shared.closed or session is None:
                raise _TransportClosedError(method, path)
            failure = None
            try:
                async with session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=shared.headers_plain if body is None else shared.headers_json,
                    timeout=attempt_timeout,
                    allow_redirects=False,
                ) as resp:
                    raw = await _read_capped(resp, shared.max_response_size, method, path)
            except (aiohttp.ClientError, OSError) as exc:
                failure = self._failed(exc, method, path, attempt, debug_started)
            if failure is not None:  # see request_counted
                raise failure
        finally:
            semaphore.release()
        status, answer_headers = resp.status, resp.headers
        del resp  # see request_counted
        return _answer(status, answer_headers, raw, method, path, attempt, debug_started)

    def _failed(
        self,
        exc: BaseException,
        method: str,
        path: str,
        attempt: int,
        debug_started: float | None,
    ) -> TransportError:
        """The error for an exchange that failed without an answer (logged at DEBUG)."""
        error = transport_error_from(exc, method, path)
        if self._shared.closed:
            closed = TransportError(
                "the transport was closed during the request",
                method=method,
                path=bare_path(path),
                request_sent=error.request_sent,
            )
            closed.__cause__, closed.__suppress_context__ = error.__cause__, True
            error = closed
        if debug_started is not None:
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms, request %s)",
                method,
                bare_path(path),
                type(exc).__name__,
                attempt,
                (_monotonic() - debug_started) * 1000,
                "maybe sent" if error.request_sent else "not sent",
            )
        return error

    # -- the slow path: token replay and retries ----------------------------------------------

    def _wants_replay(self, exc: RouteeError, token: AccessToken) -> bool:
        """A 401, or a 403 on a token old enough to have been revoked: refresh and replay."""
        if not isinstance(exc, APIStatusError):
            return False
        if exc.status == 401:
            return True
        return exc.status == 403 and token.age() >= self._shared.forbidden_refresh_after

    async def _recover(
        self,
        method: str,
        path: str,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        idempotent: bool | None,
        started: float,
        token: AccessToken | None,
        exc: RouteeError,
        attempts: int,
        secrets: tuple[str, ...],
    ) -> tuple[Any, int]:
        if idempotent is None:
            idempotent = method.upper() not in _NON_IDEMPOTENT
        self._pause_limiters(exc)
        run = self._engine.begin(method, path, idempotent=idempotent, started=started)
        run.attempts = attempts
        run.before_send = token is None
        try:
            if token is not None and self._wants_replay(exc, token):
                try:
                    data = await self._replay(run, url, params, body, token, exc, self._timeout)
                except RouteeError as replay_error:
                    exc = replay_error
                else:
                    return data, run.attempts
            if not (run.could_retry() and run.should_retry(exc)):
                raise exc
            data = await run.run(partial(self._attempt, run, url, params, body), exc)
        except RouteeError as error:
            set_attempts(error, run.attempts)
            if run.ambiguous_seen:
                error.earlier_attempt_unknown = True
            elif run.before_send:
                error.nothing_sent = True  # e.g. the token could not be had: nothing went out
            scrub_error(error, self._secrets_of(secrets))
            raise
        return data, run.attempts

    def _secrets_of(self, secrets: tuple[str, ...]) -> tuple[str, ...]:
        """The request's secret values and the access token(s) this client holds."""
        shared = self._shared
        tokens = {t.value for t in (shared.header_token, shared.tokens.token) if t is not None}
        return secrets + tuple(tokens)

    async def _attempt(
        self, run: RetryRun, url: str, params: Mapping[str, str] | None, body: bytes | None
    ) -> Any:
        """One retry attempt (tenacity calls this)."""
        shared = self._shared
        session = shared.session
        if shared.closed or session is None:
            raise _TransportClosedError(run.method, run.path)
        # Each attempt may refresh a refused token and replay once: a token revoked again
        # between retries must not fail the call while a fresh one can be had.
        run.replayed = False
        run.before_send = True
        token = await shared.tokens.get(session)
        run.before_send = False
        if token is not shared.header_token:
            shared.set_token(token)
        timeout = _clip_timeout(self._timeout, run.remaining())
        try:
            return await self._counted_send(run, url, params, body, timeout)
        except APIStatusError as exc:
            if run.replayed or not self._wants_replay(exc, token):
                raise
            return await self._replay(run, url, params, body, token, exc, timeout)

    async def _replay(
        self,
        run: RetryRun,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        stale: AccessToken,
        exc: RouteeError,
        attempt_timeout: aiohttp.ClientTimeout,
    ) -> Any:
        """Refresh the refused token (once per call, once for all callers) and replay."""
        run.replayed = True
        shared = self._shared
        session = shared.session
        if shared.closed or session is None:
            raise exc
        run.before_send = True
        token = await shared.tokens.invalidate(stale, session)
        run.before_send = False
        if token.value == stale.value:
            raise exc  # the provider has nothing better (a static token): no point replaying
        if token is not shared.header_token:
            shared.set_token(token)
        if logger.isEnabledFor(_INFO):
            logger.info(
                "%s %s: HTTP %s with the current access token; replaying once with a new one",
                run.method,
                run.path,
                getattr(exc, "status", "?"),
            )
        return await self._counted_send(
            run, url, params, body, _clip_timeout(attempt_timeout, run.remaining())
        )

    async def _counted_send(
        self,
        run: RetryRun,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        attempt_timeout: aiohttp.ClientTimeout,
    ) -> Any:
        """One HTTP attempt of a retried call, counted in ``run.attempts`` if it was made."""
        limiter = self._shared.rate_limiter
        if limiter is not None:  # every attempt counts against Routee's limit
            await limiter.acquire()
        run.attempts += 1
        try:
            return await self._send(
                run.method,
                url,
                run.path,
                params,
                body,
                attempt_timeout,
                run.attempts,
            )
        except _TransportClosedError:
            run.attempts -= 1
            raise
        except RateLimitError as exc:
            self._pause_limiters(exc)
            raise

    def _pause_limiters(self, exc: RouteeError) -> None:
        """A 429's ``Retry-After`` pauses every user of the client's and the fan-out's limiter."""
        policy = self._retry
        pause_on_429(
            exc,
            self._shared.rate_limiter,
            cap=policy.max_retry_after,
            scale=policy.sleep_scale,
        )
