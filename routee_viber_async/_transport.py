"""The HTTP transport: session and pool, auth, the concurrency bound and retries.

It knows nothing of Viber: resources hand it a method, a path, query parameters and JSON bytes,
and get back a :class:`Reply` (the decoded JSON and the number of HTTP attempts) or a typed
:class:`~routee_viber_async.RouteeError`. What an error answer means is not its business either:
the client hands it ``make_status_error`` (Routee's format, :func:`routee_status_error`).

One call (:meth:`Transport.request`) goes like this:

1. A try (:meth:`Transport._try`): a token, the cached one unless it is due for refresh (one
   fetch for all waiting callers; the fetch holds no API slot), then one HTTP exchange
   (:meth:`Transport._http`) under a slot of the semaphore (``max_concurrency`` in-flight
   API requests at most), held only for the exchange itself: never while fetching a token or
   sleeping before a retry. A 401, or a 403 on a token older than ``forbidden_refresh_after``,
   refreshes the token once and replays the request once, within the same try.
2. If the first try failed with a retryable error, tenacity takes over
   (:meth:`~routee_viber_async._retry.Retrier.after_failure`) and makes every later try
   through the same :meth:`Transport._try`: backoff with full jitter and ``Retry-After``,
   ``max_attempts``, the deadline, the client-wide retry budget, and the ambiguous-send rule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from ssl import SSLContext
from typing import Any, NamedTuple

import aiohttp

from . import _json
from ._auth import AccessToken, TokenManager, TokenProvider
from ._config import RetryPolicy
from ._errors import (
    APIStatusError,
    ClientClosedError,
    InvalidResponseError,
    ResponseTooLargeError,
    RouteeError,
    TransportError,
    bare_path,
    error_body,
    scrub_error,
)
from ._hooks import AttemptEvent, HookDispatcher, url_parts
from ._ratelimit import RateLimiter, acquire_observed, pause_on_429
from ._retry import Retrier, RetryQuota, transport_error_from
from ._version import __version__

__all__ = ["DEFAULT_MAX_RESPONSE_SIZE", "DEFAULT_USER_AGENT", "Reply", "Transport"]

logger = logging.getLogger("routee_viber_async")

DEFAULT_USER_AGENT = f"routee-viber-async/{__version__}"
#: The largest answer read by default (bytes); a larger one is a ResponseTooLargeError.
DEFAULT_MAX_RESPONSE_SIZE = 1024 * 1024
#: How long an idle pooled connection is kept (aiohttp's default).
KEEPALIVE_TIMEOUT = 15.0

#: Turns a non-2xx answer (status, raw body, headers, method, path) into the error to raise.
StatusErrorFactory = Callable[[int, bytes, Mapping[str, str], str, str], RouteeError]

_DEFAULT_RETRY = RetryPolicy()
_NON_IDEMPOTENT = frozenset({"POST", "PATCH"})
_monotonic = time.monotonic


class Reply(NamedTuple):
    """What a successful call returns: the decoded JSON (None if empty) and the number of
    HTTP requests it took (retries and a token-refresh replay included)."""

    data: Any
    attempts: int


class _TransportClosedError(TransportError):
    """The transport was closed before this request could be sent (not an HTTP attempt)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            "the transport is closed", method=method, path=bare_path(path), request_sent=False
        )


class _Call(NamedTuple):
    """What every try of one call sends."""

    method: str
    path: str
    url: str
    params: Mapping[str, str] | None
    body: bytes | None


def _as_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    return aiohttp.ClientTimeout(total=float(timeout))


def _within(timeout: aiohttp.ClientTimeout, limit: float | None) -> aiohttp.ClientTimeout:
    """``timeout``, its total shortened to ``limit`` seconds (what is left of a deadline)."""
    if limit is None or (timeout.total is not None and timeout.total <= limit):
        return timeout
    return aiohttp.ClientTimeout(
        total=max(limit, 0.001),
        connect=timeout.connect,
        sock_read=timeout.sock_read,
        sock_connect=timeout.sock_connect,
        ceil_threshold=timeout.ceil_threshold,
    )


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
        "hooks",
        "make_status_error",
        "max_concurrency",
        "max_response_size",
        "owns_session",
        "quota",
        "rate_limiter",
        "semaphore",
        "server_address",
        "server_port",
        "session",
        "session_timeout",
        "sleepers",
        "ssl_context",
        "tokens",
        "url_origin",
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
        ssl_context: SSLContext | bool,
        max_response_size: int,
        make_status_error: StatusErrorFactory,
        rate_limiter: RateLimiter | None,
        hooks: HookDispatcher | None,
    ) -> None:
        self.rate_limiter = rate_limiter  # acquired before every HTTP request
        self.hooks = hooks  # None without hooks: the one check on the hot path
        # What an attempt's hooks are told of the URL: no credentials, no query string.
        self.url_origin, self.server_address, self.server_port = url_parts(base_url)
        self.tokens = tokens
        self.max_response_size = max_response_size
        self.make_status_error = make_status_error
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
        self.headers_json: dict[str, str] = {}
        self.headers_plain: dict[str, str] = {}

    def open_session(self) -> aiohttp.ClientSession:
        """Create our session (inside the running loop, at first use)."""
        connector = aiohttp.TCPConnector(
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
        )
        self.session = session
        return session

    def use_token(self, token: AccessToken) -> None:
        """Build the headers of every API request for ``token``: the one place they are made.

        Built once per token rather than per request.
        """
        if token is self.header_token:
            return
        plain = {
            "Accept": "application/json",
            "User-Agent": self.user_agent,
            "Authorization": f"Bearer {token.value}",
        }
        self.headers_plain = plain
        self.headers_json = {**plain, "Content-Type": "application/json"}
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

    __slots__ = ("_is_view", "_retrier", "_retry", "_shared", "_timeout")

    def __init__(
        self,
        *,
        token_provider: TokenProvider,
        base_url: str,
        auth_url: str,
        make_status_error: StatusErrorFactory,
        max_concurrency: int = 100,
        retry: RetryPolicy = _DEFAULT_RETRY,
        timeout: float | aiohttp.ClientTimeout = 10.0,
        session: aiohttp.ClientSession | None = None,
        forbidden_refresh_after: float = 60.0,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: SSLContext | bool = True,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        rate_limiter: RateLimiter | None = None,
        hooks: HookDispatcher | None = None,
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
            tokens=TokenManager(token_provider, auth_url, hooks=hooks),
            base_url=base_url.rstrip("/"),
            max_concurrency=max_concurrency,
            session=session,
            session_timeout=client_timeout,
            quota=RetryQuota(retry.budget) if retry.budget is not None else None,
            forbidden_refresh_after=forbidden_refresh_after,
            user_agent=user_agent,
            ssl_context=ssl_context,
            max_response_size=max_response_size,
            make_status_error=make_status_error,
            rate_limiter=rate_limiter,
            hooks=hooks,
        )
        self._configure(retry, client_timeout, is_view=False)

    def _configure(
        self, retry: RetryPolicy, timeout: aiohttp.ClientTimeout, *, is_view: bool
    ) -> None:
        shared = self._shared
        self._retry = retry
        self._timeout = timeout
        self._retrier = Retrier(
            retry, shared.quota, sleep=shared.sleep, closed=shared.is_closed, hooks=shared.hooks
        )
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
    def hooks(self) -> HookDispatcher | None:
        """The client's hooks (None without any): resources tell them of each call."""
        return self._shared.hooks

    @property
    def max_concurrency(self) -> int:
        """The bound on in-flight API requests (shared by all views)."""
        return self._shared.max_concurrency

    # Internal, read-only: for the tests and for debugging, never for resources.

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session requests go through (None until our own is opened at first use)."""
        return self._shared.session

    @property
    def tokens(self) -> TokenManager:
        """The token cache shared by this transport and its views."""
        return self._shared.tokens

    @property
    def quota(self) -> RetryQuota | None:
        """The client-wide retry budget's running state (None without a budget)."""
        return self._shared.quota

    @property
    def semaphore(self) -> asyncio.Semaphore:
        """The ``max_concurrency`` slots of in-flight API requests."""
        return self._shared.semaphore

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
        shared.tokens.close()
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
    ) -> Reply:
        """Send one API call; return its :class:`Reply` (the 2xx answer's JSON, attempts).

        ``body`` is JSON already encoded (sent as ``application/json``). ``idempotent``
        defaults from the method (POST and PATCH are not). ``secrets`` are values of this
        request that must not outlive the wire (a pin): they and the access token are scrubbed
        out of any server text an error keeps. Raises a
        :class:`~routee_viber_async.RouteeError` whose ``attempts`` tells how many HTTP
        requests were made (:class:`~routee_viber_async.ClientClosedError` once closed).
        """
        shared = self._shared
        if shared.closed:
            raise ClientClosedError(f"{method} {bare_path(path)}: the client is closed")
        if shared.session is None:
            shared.open_session()
        call = _Call(method, path, shared.base_url + path, params, body)
        started = _monotonic()
        retrier = self._retrier
        try:
            try:
                data, attempts = await self._try(call, 0, retrier.deadline_left(started))
            except RouteeError as first_error:
                if idempotent is None:
                    idempotent = method.upper() not in _NON_IDEMPOTENT
                data, attempts = await retrier.after_failure(
                    partial(self._try, call),
                    first_error,
                    method=method,
                    path=path,
                    idempotent=idempotent,
                    started=started,
                )
            else:
                if attempts == 1:
                    retrier.on_first_try_success()
        except RouteeError as error:
            scrub_error(error, self._secrets_of(secrets))
            raise
        return Reply(data, attempts)

    # -- one try, one exchange ----------------------------------------------------------------

    async def _try(self, call: _Call, made: int, deadline_left: float | None) -> tuple[Any, int]:
        """One try of ``call`` (``made`` HTTP requests before it): ``(data, requests made)``.

        Each HTTP request of the try waits for the rate limiter, then goes out under a slot of
        the semaphore, held for the exchange alone. A refused token is refreshed and the
        request replayed once, inside the try. A failure raises its error with ``attempts``
        (this try's requests) and ``nothing_sent`` (its last request never left) set.
        """
        shared = self._shared
        timeout = _within(self._timeout, deadline_left)
        token = shared.tokens.usable()
        if token is None:
            token = await self._token(call, None, made=0)
        shared.use_token(token)
        sent = 0  # HTTP requests of this try so far
        while True:
            limiter = shared.rate_limiter
            if limiter is not None:
                await self._rate_limited(limiter, sent)
            sent += 1  # this request
            try:
                async with shared.semaphore:
                    hooks = shared.hooks
                    if hooks is None:
                        status, headers, raw = await self._http(call, timeout, made + sent)
                    else:
                        status, headers, raw = await self._http_observed(
                            hooks, call, timeout, made + sent
                        )
                return self._answer(status, headers, raw, call), sent
            except _TransportClosedError as exc:
                exc.attempts = sent - 1  # this request never went out
                raise
            except RouteeError as exc:
                exc.attempts = sent
                # A 429's Retry-After holds back every user of the limiters, not this call alone.
                pause_on_429(
                    exc,
                    shared.rate_limiter,
                    cap=self._retry.max_retry_after,
                    scale=self._retry.sleep_scale,
                )
                if sent > 1 or shared.closed or not self._wants_replay(exc, token):
                    raise
                refused = exc
            fresh = await self._token(call, token, made=sent)
            if fresh.value == token.value:
                raise refused  # the provider has nothing better (a static token): no replay
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s: HTTP %s with the current access token; replaying once with a new one",
                    call.method,
                    bare_path(call.path),
                    getattr(refused, "status", "?"),
                )
            shared.use_token(fresh)
            token = fresh

    async def _rate_limited(self, limiter: RateLimiter, sent: int) -> None:
        """Wait for the client's rate limiter (every HTTP request counts)."""
        shared = self._shared
        try:
            if shared.hooks is None:
                await limiter.acquire()
            else:
                await acquire_observed(limiter, shared.hooks.rate_limit_waited)
        except RouteeError as exc:  # a shared limiter out of reach: nothing of it was sent
            exc.attempts = sent
            exc.nothing_sent = True
            raise

    async def _token(self, call: _Call, refused: AccessToken | None, *, made: int) -> AccessToken:
        """A token to send with, fetched: a usable one, or one newer than ``refused``."""
        shared = self._shared
        session = shared.session
        try:
            if shared.closed or session is None:
                raise _TransportClosedError(call.method, call.path)
            if refused is None:
                return await shared.tokens.get(session)
            return await shared.tokens.invalidate(refused, session)
        except RouteeError as exc:
            exc.attempts = made
            exc.nothing_sent = True  # the API request never went out
            raise

    async def _http(
        self,
        call: _Call,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's per-request timeout)
        number: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP request and its answer (the caller holds a slot): status, headers, raw body.

        ``number`` counts this call's HTTP requests (for the DEBUG log).
        """
        shared = self._shared
        session = shared.session
        if shared.closed or session is None:
            raise _TransportClosedError(call.method, call.path)
        debug_started = _monotonic() if logger.isEnabledFor(logging.DEBUG) else None
        try:
            # The headers are taken once the slot is ours: a call that queued while another
            # one replaced a refused token goes out with the new token, not into a 401.
            # No local holds them: a traceback's frames (which error trackers record with
            # their locals) must not carry the Authorization header.
            async with session.request(
                call.method,
                call.url,
                params=call.params,
                data=call.body,
                headers=shared.headers_plain if call.body is None else shared.headers_json,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                raw = await _read_capped(resp, shared.max_response_size, call.method, call.path)
                status = resp.status
                if debug_started is not None:
                    logger.debug(
                        "%s %s -> %d (attempt %d, %.1f ms)",
                        call.method,
                        bare_path(call.path),
                        status,
                        number,
                        (_monotonic() - debug_started) * 1000,
                    )
                return status, resp.headers, raw
        except (aiohttp.ClientError, OSError) as exc:
            failure = self._failed(exc, call, number, debug_started)
        raise failure  # here: aiohttp's error must not be its context

    async def _http_observed(
        self,
        hooks: HookDispatcher,
        call: _Call,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's per-request timeout)
        number: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """:meth:`_http`, its start and end told to the hooks."""
        shared = self._shared
        attempt = AttemptEvent(
            call.method,
            shared.url_origin + call.path.partition("?")[0],
            shared.server_address,
            shared.server_port,
            number,
        )
        states = hooks.attempt_started(attempt)
        try:
            answer = await self._http(call, timeout, number)
        except BaseException as exc:
            hooks.attempt_ended(attempt, states, exc)
            raise
        attempt.status = answer[0]
        hooks.attempt_ended(attempt, states, None)
        return answer

    def _answer(self, status: int, headers: Mapping[str, str], raw: bytes, call: _Call) -> Any:
        """The JSON of a 2xx answer (None if empty); any other status raises its error."""
        if 200 <= status < 300:
            return self._decoded(status, headers, raw, call)
        raise self._shared.make_status_error(status, raw, headers, call.method, call.path)

    @staticmethod
    def _decoded(status: int, headers: Mapping[str, str], raw: bytes, call: _Call) -> Any:
        """The JSON of a 2xx answer (None if empty), or an :class:`InvalidResponseError`."""
        if not raw:
            return None
        try:
            return _json.loads(raw)
        except _json.JSONDecodeError:
            pass  # raised below, so that the decoder's error is not chained
        raise InvalidResponseError(
            "the answer is not valid JSON",
            status=status,
            body=error_body(raw),
            headers=dict(headers),
            method=call.method,
            path=bare_path(call.path),
        )

    def _failed(
        self, exc: BaseException, call: _Call, number: int, debug_started: float | None
    ) -> TransportError:
        """The error for an exchange that failed without an answer (logged at DEBUG)."""
        error = transport_error_from(exc, call.method, call.path)
        if self._shared.closed:
            closed = TransportError(
                "the transport was closed during the request",
                method=call.method,
                path=bare_path(call.path),
                request_sent=error.request_sent,
            )
            closed.__cause__, closed.__suppress_context__ = error.__cause__, True
            error = closed
        if debug_started is not None:
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms, request %s)",
                call.method,
                bare_path(call.path),
                type(exc).__name__,
                number,
                (_monotonic() - debug_started) * 1000,
                "maybe sent" if error.request_sent else "not sent",
            )
        return error

    def _wants_replay(self, exc: RouteeError, token: AccessToken) -> bool:
        """A 401, or a 403 on a token old enough to have been revoked: refresh and replay."""
        if not isinstance(exc, APIStatusError):
            return False
        if exc.status == 401:
            return True
        return exc.status == 403 and token.age() >= self._shared.forbidden_refresh_after

    def _secrets_of(self, secrets: tuple[str, ...]) -> tuple[str, ...]:
        """The request's secret values and the access token(s) this client holds."""
        shared = self._shared
        tokens = {t.value for t in (shared.header_token, shared.tokens.token) if t is not None}
        return secrets + tuple(tokens)
