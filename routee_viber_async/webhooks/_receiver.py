"""The framework-independent core of the webhook endpoints.

:class:`WebhookReceiver` turns one incoming POST (its token, ``Content-Length`` and streamed
body) into a :class:`WebhookAnswer` (an HTTP status and a tiny JSON body), calling the user's
handler in between. The FastAPI and aiohttp integrations are thin adapters around it; another
framework needs only the same few lines.

Answers, checked in this order (every body is JSON):

- 403 ``{"ok": false, "error": "forbidden"}``: ``allow_from`` is set and the request comes from
  elsewhere, or a secret is set and the token is missing or wrong (checked before the body is
  read);
- 415 ``{"ok": false, "error": "unsupported_media_type"}``: a ``Content-Type`` that is not JSON
  (``application/json`` or a ``+json`` type). A request *without* ``Content-Type`` is accepted
  and its body must still parse as JSON: Routee sends ``application/json``, and refusing a
  callback that a proxy stripped of its header would lose it, while accepting it admits nothing
  the parser would not;
- 413 ``{"ok": false, "error": "payload_too_large", "detail": "the body exceeds N bytes"}``:
  ``Content-Length`` says so, or the streamed body passes the limit (reading stops there);
- 408 ``{"ok": false, "error": "request_timeout"}``: the body did not arrive within
  ``body_timeout`` seconds (10 by default);
- 400 ``{"ok": false, "error": "invalid_callback", "detail": "invalid DeliveryCallback:
  $.trackingId: required field is missing"}``: malformed JSON, not a JSON object, a missing or
  mistyped field (the detail names fields, never values), or a bad ``Content-Length``;
- 200 ``{"ok": true, "duplicate": true}``: the deduplicator has seen the callback's key;
- 200 ``{"ok": true, "ignored": true}``: a combined endpoint got a kind it has no handler for;
- 503 ``{"ok": false, "error": "verification_unavailable"}``: with ``verify_with``, the tracking
  GET failed, so Routee retries later; a final status that tracking does not confirm is answered
  200 ``{"ok": true}`` and dropped (forged), without taking the deduplicator's key;
- 503 ``{"ok": false, "error": "deduplication_unavailable"}``: a shared deduplicator (Redis)
  could not be reached, so Routee retries later; the handler was not called;
- 500 ``{"ok": false, "error": "handler_failed"}``: the handler raised (logged), so Routee
  retries;
- 200 ``{"ok": true}``: the handler returned.

Routee does not sign its callbacks. The optional shared secret travels in the callback URL,
either as a path segment (``.../delivery/SECRET``, the recommended form: a route
``".../delivery/{token}"``) or as a query parameter (``...?token=SECRET``, see
:func:`with_token`), and is compared in constant time. Without a secret anybody who knows the URL
can forge a callback: the integrations log a warning at start-up.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal, Protocol, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from .. import _json
from .._enums import DeliveryStatus
from .._errors import NotFoundError, RouteeError, ValidationError
from .._responses import DeliveryCallback, ModerationCallback, TrackingRecord
from ._dedup import AnyDeduplicator, Deduplicator
from ._parse import parse_callback, parse_delivery_callback, parse_moderation_callback
from ._sources import DEFAULT_REFRESH_EVERY, Resolver, SourceAllowlist

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "SupportsTrackingGet",
    "is_json_content_type",
    "DeliveryHandler",
    "EndpointKind",
    "ModerationHandler",
    "WebhookAnswer",
    "WebhookReceiver",
    "with_token",
]

logger = logging.getLogger("routee_viber_async.webhooks")

#: 64 KiB: a callback is a few hundred bytes.
DEFAULT_MAX_BODY_SIZE: Final = 64 * 1024

#: Seconds within which a callback's body must have arrived.
DEFAULT_BODY_TIMEOUT: Final = 10.0

#: A handler may be a coroutine function (the usual case) or a plain function.
DeliveryHandler: TypeAlias = Callable[[DeliveryCallback], Awaitable[object] | object]
ModerationHandler: TypeAlias = Callable[[ModerationCallback], Awaitable[object] | object]

#: Which payload an endpoint takes: one kind, or ``"any"`` (told apart by keys).
EndpointKind: TypeAlias = Literal["delivery", "moderation", "any"]

_MAX_DETAIL = 300


class _TrackingGet(Protocol):
    async def get(self, tracking_id: str) -> TrackingRecord: ...


class SupportsTrackingGet(Protocol):
    """Anything with ``tracking.get(tracking_id)``: a ``RouteeViberClient``."""

    @property
    def tracking(self) -> _TrackingGet: ...


@attrs.frozen
class WebhookAnswer:
    """The HTTP answer to one callback POST."""

    status: int
    body: Mapping[str, Any]

    @property
    def content(self) -> bytes:
        """The JSON body."""
        return _json.dumps(self.body)

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


_OK = WebhookAnswer(200, {"ok": True})
_DUPLICATE = WebhookAnswer(200, {"ok": True, "duplicate": True})
_IGNORED = WebhookAnswer(200, {"ok": True, "ignored": True})
_FORBIDDEN = WebhookAnswer(403, {"ok": False, "error": "forbidden"})
_HANDLER_FAILED = WebhookAnswer(500, {"ok": False, "error": "handler_failed"})
_UNSUPPORTED_TYPE = WebhookAnswer(415, {"ok": False, "error": "unsupported_media_type"})
_TIMED_OUT = WebhookAnswer(408, {"ok": False, "error": "request_timeout"})
_UNVERIFIABLE = WebhookAnswer(503, {"ok": False, "error": "verification_unavailable"})
_DEDUP_UNAVAILABLE = WebhookAnswer(503, {"ok": False, "error": "deduplication_unavailable"})


def _invalid(detail: str) -> WebhookAnswer:
    return WebhookAnswer(
        400, {"ok": False, "error": "invalid_callback", "detail": detail[:_MAX_DETAIL]}
    )


class WebhookReceiver:
    """Checks, parses and dispatches callback POSTs; see the module docstring for the answers.

    ``secret`` is one shared secret, or several (to rotate one without downtime). With
    ``deduplicator``, a callback whose ``key`` was seen recently is answered 200 without calling
    the handler; a handler that raises has its key forgotten so that Routee's retry is handled.

    ``verify_with`` (a ``RouteeViberClient``): a delivery callback with a final status is
    confirmed with ``tracking.get`` before its handler sees it. ``allow_from``: hosts (such as
    :data:`~routee_viber_async.webhooks.ROUTEE_CALLBACK_HOST`), IP addresses or networks that
    may POST; ``trusted_proxies``, ``resolver`` and ``refresh_every`` as for
    :class:`~routee_viber_async.webhooks.SourceAllowlist`. ``body_timeout``: seconds within
    which the body must have arrived.
    """

    def __init__(
        self,
        *,
        on_delivery: DeliveryHandler | None = None,
        on_moderation: ModerationHandler | None = None,
        secret: str | Iterable[str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        deduplicator: AnyDeduplicator | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        verify_with: SupportsTrackingGet | None = None,
        allow_from: Iterable[str] | None = None,
        trusted_proxies: Iterable[str] = (),
        resolver: Resolver | None = None,
        refresh_every: float = DEFAULT_REFRESH_EVERY,
    ) -> None:
        if on_delivery is None and on_moderation is None:
            raise ValueError("give on_delivery, on_moderation or both")
        if max_body_size < 1:
            raise ValueError("max_body_size must be positive")
        if not body_timeout > 0:
            raise ValueError("body_timeout must be positive")
        self.on_delivery = on_delivery
        self.on_moderation = on_moderation
        self.max_body_size = max_body_size
        self.deduplicator = deduplicator
        self.body_timeout = body_timeout
        self.verify_with = verify_with
        self._secrets = _secrets(secret)
        self._allowlist = (
            None
            if allow_from is None
            else SourceAllowlist(
                allow_from,
                trusted_proxies=trusted_proxies,
                resolver=resolver,
                refresh_every=refresh_every,
            )
        )
        self._warned_unprotected = False

    @property
    def has_secret(self) -> bool:
        """True when POSTs must carry the shared secret."""
        return bool(self._secrets)

    def warn_if_unprotected(self) -> None:
        """Log a warning, once, when POSTs need no secret: anybody can forge a callback."""
        if self._secrets or self._warned_unprotected:
            return
        self._warned_unprotected = True
        logger.warning(
            "routee webhook endpoint without a secret: anybody who knows its URL can forge "
            "callbacks; give secret= and put the token in the callback URL"
        )

    def authorize(self, token: str | None) -> bool:
        """True when no secret is set, or ``token`` matches one (constant-time comparison)."""
        if not self._secrets:
            return True
        given = (token or "").encode()
        matched = False
        for secret in self._secrets:
            matched |= hmac.compare_digest(given, secret)
        return matched

    async def receive(
        self,
        kind: EndpointKind,
        *,
        token: str | None,
        content_length: str | int | None,
        body: AsyncIterable[bytes],
        content_type: str | None = None,
        peer: str | None = None,
        forwarded_for: str | None = None,
    ) -> WebhookAnswer:
        """Answer one POST: check its source, token and headers, read the body, dispatch."""
        if self._allowlist is not None and not await self._allowlist.allows(peer, forwarded_for):
            logger.warning("routee %s callback refused: source address not allowed", kind)
            return _FORBIDDEN
        if not self.authorize(token):
            logger.warning("routee %s callback refused: missing or wrong token", kind)
            return _FORBIDDEN
        if not is_json_content_type(content_type):
            logger.info("routee %s callback refused: Content-Type is not JSON", kind)
            return _UNSUPPORTED_TYPE
        too_large = self._check_length(content_length)
        if too_large is not None:
            return too_large
        try:
            async with asyncio.timeout(self.body_timeout):
                data = await self._read_body(body)
        except TimeoutError:
            logger.warning(
                "routee %s callback refused: body not received within %gs", kind, self.body_timeout
            )
            return _TIMED_OUT
        if data is None:
            return self._too_large()
        return await self.dispatch(kind, data)

    async def _read_body(self, body: AsyncIterable[bytes]) -> bytes | None:
        """The body, or None as soon as it passes ``max_body_size``."""
        size = 0
        chunks: list[bytes] = []
        async for chunk in body:
            size += len(chunk)
            if size > self.max_body_size:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def dispatch(self, kind: EndpointKind, body: bytes) -> WebhookAnswer:
        """Parse a body already read (and bounded) and call its handler."""
        try:
            callback = _PARSERS[kind](body)
        except ValidationError as exc:
            logger.info("routee %s callback refused: %s", kind, exc)
            return _invalid(str(exc))
        if isinstance(callback, DeliveryCallback):
            handler: Callable[[Any], object] | None = self.on_delivery
            dedup_key: tuple[str, ...] = ("delivery", *callback.key)
            ident = f"trackingId={callback.tracking_id}"
        else:
            handler = self.on_moderation
            dedup_key = ("moderation", *callback.key)
            ident = f"templateId={callback.template_id}"
        if handler is None:
            return _IGNORED
        dedup = self.deduplicator
        try:
            if dedup is not None and await _contains(dedup, dedup_key):
                logger.debug("routee callback %s dropped as a duplicate", ident)
                return _DUPLICATE
            if isinstance(callback, DeliveryCallback):
                unverified = await self._verify(callback)
                if unverified is not None:
                    return unverified
            # Claimed only now, after the await: a forged callback never takes the key.
            if dedup is not None and await _seen(dedup, dedup_key):
                logger.debug("routee callback %s dropped as a duplicate", ident)
                return _DUPLICATE
        except RouteeError as exc:  # a shared deduplicator is down: Routee retries later
            logger.warning("routee callback %s not handled: %s", ident, exc)
            return _DEDUP_UNAVAILABLE
        try:
            result = handler(callback)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if dedup is not None:
                await _forget(dedup, dedup_key)
            logger.exception("routee callback handler failed (%s)", ident)
            return _HANDLER_FAILED
        except BaseException:  # cancelled: the key must not stay "seen"
            if dedup is not None:
                await asyncio.shield(_forget(dedup, dedup_key))
            raise
        return _OK

    async def _verify(self, callback: DeliveryCallback) -> WebhookAnswer | None:
        """None when the callback may be handled; else the answer (it is not handled)."""
        client = self.verify_with
        status = callback.status.name
        if client is None or not isinstance(status, DeliveryStatus) or not status.is_final:
            return None
        ident = f"trackingId={callback.tracking_id}"
        try:
            record = await client.tracking.get(callback.tracking_id)
        except NotFoundError:
            record = None
        except RouteeError as exc:
            logger.warning("routee callback %s not verified (%s): Routee will retry", ident, exc)
            return _UNVERIFIABLE
        if record is not None and _confirms(record, status):
            return None
        logger.warning(
            "routee callback %s dropped: tracking does not confirm status %s (forged?)",
            ident,
            status,
        )
        return _OK

    def _check_length(self, content_length: str | int | None) -> WebhookAnswer | None:
        if content_length is None or content_length == "":
            return None
        try:
            length = int(content_length)
        except ValueError:
            return _invalid("invalid Content-Length header")
        if length < 0:
            return _invalid("invalid Content-Length header")
        if length > self.max_body_size:
            return self._too_large()
        return None

    def _too_large(self) -> WebhookAnswer:
        logger.warning("routee callback refused: body above %d bytes", self.max_body_size)
        return WebhookAnswer(
            413,
            {
                "ok": False,
                "error": "payload_too_large",
                "detail": f"the body exceeds {self.max_body_size} bytes",
            },
        )


_PARSERS: Final[Mapping[EndpointKind, Callable[[bytes], DeliveryCallback | ModerationCallback]]] = {
    "delivery": parse_delivery_callback,
    "moderation": parse_moderation_callback,
    "any": parse_callback,
}


def is_json_content_type(content_type: str | None) -> bool:
    """True for a JSON media type (``application/json``, ``application/x+json``) or none."""
    if content_type is None or not content_type.strip():
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _confirms(record: TrackingRecord, status: DeliveryStatus) -> bool:
    """True when the tracking record has reached ``status`` (SEEN implies DELIVERED)."""
    tracked = record.status.status if record.status is not None else None
    if tracked == status:
        return True
    return status is DeliveryStatus.DELIVERED and tracked is DeliveryStatus.SEEN


def _secrets(secret: str | Iterable[str] | None) -> tuple[bytes, ...]:
    if secret is None:
        return ()
    values = [secret] if isinstance(secret, str) else list(secret)
    if not values or any(not isinstance(v, str) or not v for v in values):
        raise ValueError("secret must be a non-empty string (or several)")
    return tuple(v.encode() for v in values)


def with_token(url: str, secret: str, *, param: str = "token") -> str:
    """``url`` with the shared secret added as a query parameter, for a ``callbackUrl``.

    >>> with_token("https://example.com/routee/delivery", "s3cret")
    'https://example.com/routee/delivery?token=s3cret'
    """
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    query.append((param, secret))
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- the deduplicator, in-memory or shared ------------------------------------------------------


async def _contains(dedup: AnyDeduplicator, key: tuple[str, ...]) -> bool:
    if isinstance(dedup, Deduplicator):
        return key in dedup
    return await dedup.contains(key)


async def _seen(dedup: AnyDeduplicator, key: tuple[str, ...]) -> bool:
    if isinstance(dedup, Deduplicator):
        return dedup.seen(key)
    return await dedup.seen(key)


async def _forget(dedup: AnyDeduplicator, key: tuple[str, ...]) -> None:
    """Release ``key``; a shared deduplicator that fails keeps it until its ttl (logged)."""
    if isinstance(dedup, Deduplicator):
        dedup.forget(key)
        return
    try:
        await dedup.forget(key)
    except RouteeError as exc:
        logger.warning("routee callback key not released (%s): kept until it expires", exc)
