"""``RouteeViberClient``: the entry point, owning one transport and exposing the resources."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from functools import cached_property
from ssl import SSLContext, create_default_context
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp

from ._auth import ClientCredentials, StaticToken, TokenProvider
from ._config import RetryPolicy
from ._errors import ConfigurationError, routee_status_error
from ._hooks import as_dispatcher
from ._ratelimit import RateLimiter, as_rate_limiter
from ._transport import DEFAULT_MAX_RESPONSE_SIZE, Transport
from ._validation import is_loopback_host
from .resources import MessagesResource, TemplatesResource, TrackingResource

__all__ = ["DEFAULT_AUTH_URL", "DEFAULT_BASE_URL", "RouteeViberClient"]

DEFAULT_BASE_URL = "https://connect.routee.net"
DEFAULT_AUTH_URL = "https://auth.routee.net/oauth/token"


def _check_url(value: object, name: str, example: str) -> None:
    # The value is not echoed: a URL may carry credentials (https://user:password@host).
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a URL string, not {type(value).__name__}")
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an absolute http(s) URL with a host, such as {example}")


def _check_seconds(value: object, name: str, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")


def _ssl_context(
    value: object, *, base_url: str, auth_url: str, session: object
) -> SSLContext | bool:
    """The ``ssl=`` option as our connector takes it (see :class:`RouteeViberClient`)."""
    if value is True:
        return True
    if session is not None:
        raise ValueError(
            "ssl applies to the client's own connection pool; with session=, configure the "
            "TLS of that session's connector instead"
        )
    if value is False:
        if not all(is_loopback_host(urlsplit(url).hostname) for url in (base_url, auth_url)):
            raise ValueError(
                "ssl=False (no certificate verification) is only for the local sandbox and "
                "tests, on loopback hosts; to trust a private CA, pass ssl= a CA-bundle path or "
                "an ssl.SSLContext"
            )
        return False
    if isinstance(value, SSLContext):
        return value
    if isinstance(value, str | os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return _trusting(path)
    raise TypeError(
        "ssl must be an ssl.SSLContext, a CA-bundle path, True or False, "
        f"not {type(value).__name__}"
    )


def _trusting(path: str) -> SSLContext:
    """A verifying context that trusts the CA certificates of the PEM file at ``path``."""
    try:
        return create_default_context(cafile=path)
    except OSError as exc:  # ssl.SSLError included
        raise ValueError(f"ssl: cannot load CA certificates from {path!r}: {exc}") from None


def _check_options(retry: object, timeout: object) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
    if not isinstance(timeout, aiohttp.ClientTimeout):
        _check_seconds(timeout, "timeout")


class RouteeViberClient:
    """An async client for Routee's Viber Business Messages API.

    One client owns one HTTP connection pool, one OAuth token (refreshed ahead of expiry, once
    for any number of concurrent callers) and one semaphore over in-flight requests. Use it as
    ``async with RouteeViberClient(...) as client:`` or call :meth:`close`; a call after
    :meth:`close` raises :class:`ClientClosedError`.
    :meth:`from_env` builds one from ``ROUTEE_*`` environment variables.

    Every parameter is keyword-only:

    credentials (required)
        A :class:`ClientCredentials` (application id and secret, exchanged for an OAuth token
        at ``auth_url``), a :class:`StaticToken`, or any object with
        ``async def fetch_token(http, auth_url) -> AccessToken``.
    base_url = ``"https://connect.routee.net"``
        The API's root URL (the sandbox's ``sb.base_url`` in tests).
    auth_url = ``"https://auth.routee.net/oauth/token"``
        The OAuth token endpoint.
    max_concurrency = ``100``
        The most API requests in flight at once, over every call of the client and its
        :meth:`with_options` views; it also bounds ``messages.send_many(concurrency=...)``.
    retry = ``None``, meaning ``RetryPolicy()``
        How failed requests are retried: by default ``max_attempts=4`` tries in all, exponential
        backoff with full jitter from ``initial_backoff=0.25`` s up to ``max_backoff=8`` s,
        ``Retry-After`` honoured up to ``max_retry_after=30`` s, within a ``deadline=60`` s per
        call, and a client-wide ``RetryBudget()``. See :class:`RetryPolicy` for every field,
        and ``RetryPolicy.disabled()`` for one attempt only.
    timeout = ``10.0``
        Seconds per HTTP attempt (each retry gets its own; the last is shortened to fit the
        retry deadline), or an ``aiohttp.ClientTimeout`` for finer control.
    session = ``None``
        An ``aiohttp.ClientSession`` of yours to send through; the client then never closes it,
        and ``ssl`` does not apply (configure that session's connector). By default the client
        opens and owns its session.
    forbidden_refresh_after = ``60.0``
        Routee often answers an expired token with 403: a 403 on a token older than this many
        seconds refreshes the token and replays once, like a 401 (0 always does; a fresher
        token's 403 is a :class:`PermissionDeniedError` at once).
    ssl = ``True``
        TLS certificate verification of the client's own session, for the API and the token
        fetch alike, in the spirit of httpx's ``verify=``: ``True`` verifies against the
        system's CA certificates; a path (``str`` or ``os.PathLike``) to a CA bundle (a PEM
        file) trusts those CAs instead (a private CA, a corporate proxy); an ``ssl.SSLContext`` is
        used as given (client certificates, pinning, protocol limits); ``False`` turns
        verification off and is allowed only when ``base_url`` and ``auth_url`` are loopback
        hosts: it is for the local sandbox and tests, never for Routee itself.
    max_response_size = ``1048576`` (1 MiB)
        The largest answer read, in bytes: a larger one raises
        :class:`ResponseTooLargeError` before it is read in full (for a send, outcome
        unknown).
    rate_limiter = ``None``
        Paces every HTTP attempt of the client and its views: a number (attempts per second,
        in this process) or a :class:`RateLimiter` (for example
        ``integrations.redis.RedisRateLimiter``, one limit shared by every process). A 429's
        ``Retry-After`` pauses it, so every caller waits, not only the refused one.
    hooks = ``None``
        Objects told of each SDK call and each HTTP attempt (see :class:`Hooks`), such as
        ``integrations.opentelemetry.OpenTelemetryHooks()`` (traces and metrics) or
        ``integrations.prometheus.PrometheusHooks()``. They run in the call's task; one that
        raises is logged once and ignored. Without hooks, the client does no hook work.

    Which template parameters are secret (masked everywhere, scrubbed from server text) is
    the process-wide :func:`set_secret_params` (default ``{"pin"}``).
    """

    def __init__(
        self,
        *,
        credentials: TokenProvider,
        base_url: str = DEFAULT_BASE_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        max_concurrency: int = 100,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout = 10.0,
        session: aiohttp.ClientSession | None = None,
        forbidden_refresh_after: float = 60.0,
        ssl: SSLContext | str | os.PathLike[str] | bool = True,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        rate_limiter: float | RateLimiter | None = None,
        hooks: Iterable[object] | None = None,
    ) -> None:
        if not isinstance(credentials, TokenProvider):
            raise TypeError(
                "credentials must be ClientCredentials, StaticToken or another TokenProvider "
                f"(an object with `async def fetch_token(http, auth_url)`), not "
                f"{type(credentials).__name__}"
            )
        _check_url(base_url, "base_url", DEFAULT_BASE_URL)
        _check_url(auth_url, "auth_url", DEFAULT_AUTH_URL)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise TypeError(
                f"max_concurrency must be an integer, not {type(max_concurrency).__name__}"
            )
        _check_options(retry, timeout)
        _check_seconds(forbidden_refresh_after, "forbidden_refresh_after", allow_zero=True)
        ssl_context = _ssl_context(ssl, base_url=base_url, auth_url=auth_url, session=session)
        if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
            kind = type(max_response_size).__name__
            raise TypeError(f"max_response_size must be a number of bytes, not {kind}")
        self._transport = Transport(
            token_provider=credentials,
            base_url=base_url,
            auth_url=auth_url,
            make_status_error=routee_status_error,
            max_concurrency=max_concurrency,
            retry=retry if retry is not None else RetryPolicy(),
            timeout=timeout,
            session=session,
            forbidden_refresh_after=forbidden_refresh_after,
            ssl_context=ssl_context,
            max_response_size=max_response_size,
            rate_limiter=as_rate_limiter(rate_limiter, "rate_limiter"),
            hooks=as_dispatcher(hooks),
        )

    @classmethod
    def _from_transport(cls, transport: Transport) -> Self:
        client = cls.__new__(cls)
        client._transport = transport
        return client

    @classmethod
    def from_env(cls, **options: object) -> Self:
        """A client configured from the environment.

        ``ROUTEE_APPLICATION_ID`` and ``ROUTEE_APPLICATION_SECRET`` (or ``ROUTEE_ACCESS_TOKEN``),
        and optionally ``ROUTEE_BASE_URL`` and ``ROUTEE_AUTH_URL``. Keyword ``options`` are
        passed on to the constructor and win over the environment.

        Raises:
            ConfigurationError: no credentials in the environment nor in ``options``.
        """
        env = os.environ
        credentials: TokenProvider
        if env.get("ROUTEE_APPLICATION_ID") and env.get("ROUTEE_APPLICATION_SECRET"):
            credentials = ClientCredentials(
                env["ROUTEE_APPLICATION_ID"], env["ROUTEE_APPLICATION_SECRET"]
            )
        elif env.get("ROUTEE_ACCESS_TOKEN"):
            credentials = StaticToken(env["ROUTEE_ACCESS_TOKEN"])
        elif "credentials" not in options:
            raise ConfigurationError(
                "set ROUTEE_APPLICATION_ID and ROUTEE_APPLICATION_SECRET, or ROUTEE_ACCESS_TOKEN"
            )
        kwargs: dict[str, object] = {}
        if "credentials" not in options:
            kwargs["credentials"] = credentials
        if env.get("ROUTEE_BASE_URL"):
            kwargs["base_url"] = env["ROUTEE_BASE_URL"]
        if env.get("ROUTEE_AUTH_URL"):
            kwargs["auth_url"] = env["ROUTEE_AUTH_URL"]
        kwargs.update(options)
        return cls(**kwargs)  # type: ignore[arg-type]

    def with_options(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> Self:
        """A view of this client with other retry or timeout settings.

        The view shares the connection pool, the token and the semaphore; closing it does not
        close them.
        """
        _check_options(retry, 10.0 if timeout is None else timeout)
        return self._from_transport(self._transport.with_options(retry=retry, timeout=timeout))

    @cached_property
    def templates(self) -> TemplatesResource:
        """Transactional templates: list, get, create, update the callback, delete."""
        return TemplatesResource(self._transport)

    @cached_property
    def messages(self) -> MessagesResource:
        """Sends: ``send``, legacy ``send_otp`` and the ``send_many`` fan-out."""
        return MessagesResource(self._transport)

    @cached_property
    def tracking(self) -> TrackingResource:
        """Delivery status: ``get`` and ``wait``."""
        return TrackingResource(self._transport)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._transport.closed

    async def close(self) -> None:
        """Close the connection pool (never a caller-owned session). Idempotent."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<RouteeViberClient base_url={self._transport.base_url!r}>"
