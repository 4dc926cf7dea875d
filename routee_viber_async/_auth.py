"""Access tokens: where they come from (token providers) and how a client keeps one fresh.

- :class:`ClientCredentials` fetches tokens from Routee's OAuth server (client-credentials grant,
  HTTP Basic ``application_id:application_secret``).
- :class:`StaticToken` is a token you already have; it never expires on our side.
- Anything with an ``async def fetch_token(http, auth_url) -> AccessToken`` method
  (:class:`TokenProvider`) works too.

The private :class:`TokenManager` caches the token, refreshes it ahead of its expiry and makes
exactly one fetch however many coroutines need a token at the same time, including a storm of
401 answers that all carry the same stale token.

Secrets (the token's value, the application secret) never appear in a ``repr``, a log record
or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import aiohttp
import attrs

from . import _json
from ._errors import (
    APIStatusError,
    AuthenticationError,
    RateLimitError,
    RouteeError,
    ServerError,
    TransportError,
)
from ._hooks import HookDispatcher, TokenFetchEvent, public_url, url_parts
from ._masking import MASK
from ._retry import bare_path, parse_retry_after, transport_error_from

__all__ = ["AccessToken", "ClientCredentials", "StaticToken", "TokenProvider"]

logger = logging.getLogger("routee_viber_async")
_monotonic = time.monotonic


def _masked(_: object) -> str:
    return MASK


@attrs.frozen
class AccessToken:
    """A bearer token.

    ``obtained_at`` and ``expires_at`` are :func:`time.monotonic` readings (``expires_at`` is
    None for a token that does not expire). The value never shows in ``repr``.
    """

    value: str = attrs.field(repr=_masked)
    expires_at: float | None = attrs.field(default=None, kw_only=True)
    obtained_at: float = attrs.field(factory=_monotonic, kw_only=True)
    token_type: str = attrs.field(default="Bearer", kw_only=True)

    @classmethod
    def from_expires_in(
        cls,
        value: str,
        expires_in: float | None,
        *,
        obtained_at: float | None = None,
        token_type: str = "Bearer",
    ) -> AccessToken:
        """A token obtained at ``obtained_at`` (default: now) and valid ``expires_in`` seconds."""
        obtained = _monotonic() if obtained_at is None else obtained_at
        expires_at = None if expires_in is None else obtained + expires_in
        return cls(value, expires_at=expires_at, obtained_at=obtained, token_type=token_type)

    def age(self, now: float | None = None) -> float:
        """Seconds since the token was obtained."""
        return (_monotonic() if now is None else now) - self.obtained_at

    def remaining(self, now: float | None = None) -> float:
        """Seconds until expiry (``inf`` for a token that does not expire)."""
        if self.expires_at is None:
            return math.inf
        return self.expires_at - (_monotonic() if now is None else now)

    def is_expired(self, now: float | None = None) -> bool:
        """True once the token's lifetime is over."""
        return self.remaining(now) <= 0


@runtime_checkable
class TokenProvider(Protocol):
    """Something that can produce an access token (``ClientCredentials``, ``StaticToken``, ...).

    ``fetch_token`` is called by the client whenever it needs a new token: at first use, ahead
    of the current token's expiry, and after the API refused a token. It should raise
    :class:`~routee_viber_async.AuthenticationError` when the credentials are refused.
    """

    async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
        """Obtain a fresh token, using ``http`` for any HTTP call."""
        ...


@attrs.frozen
class StaticToken:
    """An access token obtained elsewhere; used as it is and never refreshed on our side."""

    value: str = attrs.field(repr=_masked, validator=attrs.validators.instance_of(str))

    async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
        """Return the token (no HTTP call)."""
        return AccessToken(self.value)


@attrs.frozen
class ClientCredentials:
    """Routee application credentials (client-credentials grant).

    ``fetch_token`` POSTs ``grant_type=client_credentials`` to the auth URL with HTTP Basic
    authentication ``base64(application_id:application_secret)``. The secret never shows in
    ``repr`` or in errors.
    """

    application_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    application_secret: str = attrs.field(repr=_masked, validator=attrs.validators.instance_of(str))

    def _token_request_headers(self) -> dict[str, str]:
        return {"Authorization": self._basic_authorization(), "Accept": "application/json"}

    def _basic_authorization(self) -> str:
        raw = f"{self.application_id}:{self.application_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
        """Exchange the credentials for an access token.

        Raises:
            AuthenticationError: the auth server refused the credentials (HTTP 400, 401, 403),
                or answered 2xx without a usable token.
            RateLimitError, ServerError, APIStatusError: other error answers.
            TransportError: the auth server could not be reached.
        """
        path = bare_path(_url_path(auth_url))
        obtained_at = _monotonic()
        failure: TransportError | None = None
        try:
            async with http.post(
                auth_url,
                data={"grant_type": "client_credentials"},
                # Not kept in a local: error trackers record a traceback's frame locals.
                headers={
                    "Authorization": self._basic_authorization(),
                    "Accept": "application/json",
                },
                allow_redirects=False,
            ) as resp:
                status = resp.status
                raw = await resp.read()
                resp_headers = dict(resp.headers)
        except (aiohttp.ClientError, OSError) as exc:
            # Raised below, out of this block: aiohttp's error holds the Basic header, and
            # must be neither the cause nor the context of ours.
            failure = transport_error_from(exc, "POST", path)
        if failure is not None:
            raise failure
        if 200 <= status < 300:
            return _parse_token(_decode_body(raw), status, resp_headers, path, obtained_at)
        raise _auth_status_error(status, _decode_error_body(raw), resp_headers, path)


def _url_path(url: str) -> str:
    scheme_sep = url.find("://")
    rest = url[scheme_sep + 3 :] if scheme_sep >= 0 else url
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError:
        return None


def _decode_error_body(raw: bytes) -> Any:
    """The body kept on a refused token request: Routee's JSON (masked by key), never text.

    A text page may echo the request or carry a token under a name we cannot know.
    """
    body = _decode_body(raw)
    return body if isinstance(body, Mapping) else None


def _oauth_code(body: Any) -> str | None:
    if isinstance(body, Mapping):
        for key in ("error", "code"):
            value = body.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
    return None


def _auth_status_error(
    status: int, body: Any, headers: Mapping[str, str], path: str
) -> APIStatusError:
    code = _oauth_code(body)
    detail = f" ({code})" if code else ""
    kwargs: dict[str, Any] = {
        "status": status,
        "body": body,
        "headers": headers,
        "method": "POST",
        "path": path,
    }
    if status in (400, 401, 403):
        return AuthenticationError(f"the auth server refused the credentials{detail}", **kwargs)
    if status == 429:
        retry_after = parse_retry_after(
            next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        )
        return RateLimitError(
            f"the auth server is rate limiting{detail}", retry_after=retry_after, **kwargs
        )
    if status >= 500:
        return ServerError(f"the auth server failed{detail}", **kwargs)
    return APIStatusError(f"unexpected answer from the auth server{detail}", **kwargs)


def _parse_token(
    body: Any, status: int, headers: Mapping[str, str], path: str, obtained_at: float
) -> AccessToken:
    value = body.get("access_token") if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value:
        # No body kept: an answer we cannot read may still hold a valid token somewhere.
        raise AuthenticationError(
            "the auth server answered without a usable access_token",
            status=status,
            headers=headers,
            method="POST",
            path=path,
        )
    assert isinstance(body, Mapping)
    expires_in: float | None
    try:
        expires_in = float(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        expires_in = None
    if expires_in is not None and (not math.isfinite(expires_in) or expires_in <= 0):
        expires_in = None
    token_type = body.get("token_type")
    return AccessToken.from_expires_in(
        value,
        expires_in,
        obtained_at=obtained_at,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
    )


def refresh_margin(lifetime: float, *, minimum: float = 30.0, fraction: float = 0.1) -> float:
    """How long before expiry a token of ``lifetime`` seconds is refreshed.

    ``max(minimum, fraction * lifetime)``, but never more than half the lifetime, so that even a
    short-lived token is used for a while.
    """
    return min(max(minimum, fraction * lifetime), lifetime / 2)


# A failed refresh-ahead (the old token still valid) is retried after at most this long.
_SOFT_FAILURE_BACKOFF = 5.0
_TRANSIENT = (TransportError, ServerError, RateLimitError)


class TokenManager:
    """Caches a provider's token, refreshes it ahead of expiry, one fetch at a time.

    - ``token`` / ``refresh_at``: the current token and the monotonic time after which it
      should be refreshed.
    - :meth:`get` returns a usable token, fetching one when needed (:meth:`usable` is the
      cached one, when it can be sent without a fetch). While one coroutine
      refreshes a token that is still valid, the others keep using it instead of waiting.
    - :meth:`invalidate` is for a token the API refused: it fetches a new one unless another
      coroutine already replaced that token, so any number of concurrent 401s carrying the same
      stale token cause one fetch.
    - The fetch runs in a task of its own; every caller awaits it through ``asyncio.shield``,
      so a cancelled caller leaves the fetch running for the others, and all of them wake
      together when it ends. They share its outcome, failure included: bad credentials cost
      one auth request, not one per caller. :meth:`close` cancels a fetch in flight.
    """

    __slots__ = (
        "_pending",
        "_rejected",
        "auth_url",
        "fetches",
        "hooks",
        "margin_fraction",
        "min_margin",
        "provider",
        "refresh_at",
        "token",
    )

    def __init__(
        self,
        provider: TokenProvider,
        auth_url: str,
        *,
        min_margin: float = 30.0,
        margin_fraction: float = 0.1,
        hooks: HookDispatcher | None = None,
    ) -> None:
        self.provider = provider
        self.auth_url = auth_url
        self.hooks = hooks  # told of each fetch
        self.min_margin = min_margin
        self.margin_fraction = margin_fraction
        self.token: AccessToken | None = None
        self.refresh_at = -math.inf
        #: How many times the provider was asked for a token.
        self.fetches = 0
        #: The fetch in flight, if any: every caller meanwhile waits for its outcome.
        self._pending: asyncio.Task[AccessToken] | None = None
        self._rejected: AccessToken | None = None

    def usable(self) -> AccessToken | None:
        """The cached token if it can be sent now, without a fetch; else None."""
        token = self.token
        if token is not None:
            now = _monotonic()
            if now < self.refresh_at:
                return token
            if (
                self._pending is not None
                and token is not self._rejected
                and not token.is_expired(now)
            ):
                return token  # being refreshed ahead by someone else; still good meanwhile
        return None

    async def get(self, http: aiohttp.ClientSession) -> AccessToken:
        """A token that is not due for refresh, fetching one if needed."""
        token = self.usable()
        if token is not None:
            return token
        return await self._refresh(http, stale=None)

    async def invalidate(self, stale: AccessToken, http: aiohttp.ClientSession) -> AccessToken:
        """The API refused ``stale``: return a newer token, fetching one only if needed."""
        token = self.token
        if token is not None and token is not stale:
            return token
        self._rejected = stale
        self.refresh_at = -math.inf  # should this fetch fail, the next caller fetches again
        return await self._refresh(http, stale=stale)

    async def _refresh(
        self, http: aiohttp.ClientSession, *, stale: AccessToken | None
    ) -> AccessToken:
        while (pending := self._pending) is not None:
            token = await self._join(pending)
            if token is not stale:
                return token
        task = asyncio.get_running_loop().create_task(self._fetch(http, stale=stale))
        self._pending = task
        task.add_done_callback(self._fetched)
        return await self._join(task)

    async def _join(self, fetch: asyncio.Task[AccessToken]) -> AccessToken:
        """The outcome of ``fetch``; shielded, so that a caller's cancellation is its own."""
        try:
            return await asyncio.shield(fetch)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if fetch.cancelled() and (current is None or not current.cancelling()):
                # close() cancelled the fetch, not this caller: its call ends like any other
                # call that close() cuts (not sent, not retried).
                raise TransportError(
                    "the client was closed while fetching an access token",
                    method="POST",
                    path=bare_path(_url_path(self.auth_url)),
                    request_sent=False,
                ) from None
            raise

    def _fetched(self, task: asyncio.Task[AccessToken]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved, so an outcome nobody waited for is not logged

    @property
    def fetching(self) -> bool:
        """True while a token fetch is in flight."""
        return self._pending is not None

    async def wait_fetched(self) -> None:
        """Wait until the fetch in flight, if any, has ended (whatever its outcome)."""
        if self._pending is not None:
            await asyncio.wait([self._pending])

    def close(self) -> None:
        """Cancel the fetch in flight, if any (the client is closing)."""
        if self._pending is not None:
            self._pending.cancel()

    async def _fetch(
        self, http: aiohttp.ClientSession, *, stale: AccessToken | None
    ) -> AccessToken:
        previous = self.token
        self.fetches += 1
        hooks = self.hooks
        if hooks is not None:
            reason = "initial" if previous is None else "refresh" if stale is None else "refused"
            return await self._fetch_observed(hooks, http, stale=stale, reason=reason)
        return await self._fetch_once(http, stale=stale, previous=previous)

    async def _fetch_observed(
        self,
        hooks: HookDispatcher,
        http: aiohttp.ClientSession,
        *,
        stale: AccessToken | None,
        reason: str,
    ) -> AccessToken:
        """:meth:`_fetch_once`, its start and end told to the hooks (no credential in them)."""
        _, host, port = url_parts(self.auth_url)
        fetch = TokenFetchEvent(public_url(self.auth_url), host, port, reason)
        states = hooks.token_fetch_started(fetch)
        try:
            token = await self._fetch_once(http, stale=stale, previous=self.token)
        except BaseException as exc:
            hooks.token_fetch_ended(fetch, states, exc)
            raise
        hooks.token_fetch_ended(fetch, states, None)
        return token

    async def _fetch_once(
        self,
        http: aiohttp.ClientSession,
        *,
        stale: AccessToken | None,
        previous: AccessToken | None,
    ) -> AccessToken:
        try:
            token = await self.provider.fetch_token(http, self.auth_url)
        except RouteeError as exc:
            error: RouteeError = exc
        except (aiohttp.ClientError, OSError) as exc:  # a custom provider's raw aiohttp error
            # Chains a summary, not exc; raised below, outside this block (no __context__).
            error = transport_error_from(exc, "POST", bare_path(_url_path(self.auth_url)))
        else:
            if not isinstance(token, AccessToken):
                raise TypeError(
                    f"{type(self.provider).__name__}.fetch_token() returned "
                    f"{type(token).__name__}, not AccessToken"
                )
            self._store(token)
            return token
        now = _monotonic()
        if (
            isinstance(error, _TRANSIENT)
            and stale is None
            and previous is not None
            and not previous.is_expired(now)
        ):
            # Refreshing ahead failed, but the current token is still valid: keep using it,
            # and try again a little later.
            self.refresh_at = now + min(_SOFT_FAILURE_BACKOFF, previous.remaining(now) / 2)
            if logger.isEnabledFor(logging.WARNING):
                logger.warning(
                    "could not refresh the access token ahead of expiry (%s); "
                    "using the current one for %.0fs more",
                    type(error).__name__,
                    previous.remaining(now),
                )
            return previous
        raise error

    def _store(self, token: AccessToken) -> None:
        self.token = token
        expires_at = token.expires_at
        if expires_at is None:
            self.refresh_at = math.inf
        else:
            lifetime = max(0.0, expires_at - token.obtained_at)
            margin = refresh_margin(
                lifetime, minimum=self.min_margin, fraction=self.margin_fraction
            )
            self.refresh_at = expires_at - margin
        if logger.isEnabledFor(logging.DEBUG):
            remaining = token.remaining()
            logger.debug(
                "obtained an access token (%s)",
                "no expiry" if math.isinf(remaining) else f"expires in {remaining:.0f}s",
            )

    def __repr__(self) -> str:
        return f"<TokenManager provider={self.provider!r} fetches={self.fetches}>"
