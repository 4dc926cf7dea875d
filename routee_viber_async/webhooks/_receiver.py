"""The framework-independent core of the webhook endpoints.

:class:`WebhookReceiver` turns one incoming POST (its token, ``Content-Length`` and streamed
body) into a :class:`WebhookAnswer` (an HTTP status and a tiny JSON body), calling the user's
handler in between. The FastAPI and aiohttp integrations are thin adapters around it; another
framework needs only the same few lines.

Answers, checked in this order (every body is JSON):

- 403 ``{"ok": false, "error": "forbidden"}``: a secret is set and the token is missing or wrong
  (checked before the body is read);
- 413 ``{"ok": false, "error": "payload_too_large", "detail": "the body exceeds N bytes"}``:
  ``Content-Length`` says so, or the streamed body passes the limit (reading stops there);
- 400 ``{"ok": false, "error": "invalid_callback", "detail": "invalid DeliveryCallback:
  $.trackingId: required field is missing"}``: malformed JSON, not a JSON object, a missing or
  mistyped field (the detail names fields, never values), or a bad ``Content-Length``;
- 200 ``{"ok": true, "duplicate": true}``: the deduplicator has seen the callback's key;
- 200 ``{"ok": true, "ignored": true}``: a combined endpoint got a kind it has no handler for;
- 500 ``{"ok": false, "error": "handler_failed"}``: the handler raised (logged), so Routee
  retries;
- 200 ``{"ok": true}``: the handler returned.

Routee does not sign its callbacks. The optional shared secret travels in the callback URL
(``...?token=SECRET``, see :func:`with_token`) and is compared in constant time.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from .. import _json
from .._errors import ValidationError
from .._responses import DeliveryCallback, ModerationCallback
from ._dedup import Deduplicator
from ._parse import parse_callback, parse_delivery_callback, parse_moderation_callback

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
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

#: A handler may be a coroutine function (the usual case) or a plain function.
DeliveryHandler: TypeAlias = Callable[[DeliveryCallback], Awaitable[object] | object]
ModerationHandler: TypeAlias = Callable[[ModerationCallback], Awaitable[object] | object]

#: Which payload an endpoint takes: one kind, or ``"any"`` (told apart by keys).
EndpointKind: TypeAlias = Literal["delivery", "moderation", "any"]

_MAX_DETAIL = 300


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


def _invalid(detail: str) -> WebhookAnswer:
    return WebhookAnswer(
        400, {"ok": False, "error": "invalid_callback", "detail": detail[:_MAX_DETAIL]}
    )


class WebhookReceiver:
    """Checks, parses and dispatches callback POSTs; see the module docstring for the answers.

    ``secret`` is one shared secret, or several (to rotate one without downtime). With
    ``deduplicator``, a callback whose ``key`` was seen recently is answered 200 without calling
    the handler; a handler that raises has its key forgotten so that Routee's retry is handled.
    """

    def __init__(
        self,
        *,
        on_delivery: DeliveryHandler | None = None,
        on_moderation: ModerationHandler | None = None,
        secret: str | Iterable[str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        deduplicator: Deduplicator | None = None,
    ) -> None:
        if on_delivery is None and on_moderation is None:
            raise ValueError("give on_delivery, on_moderation or both")
        if max_body_size < 1:
            raise ValueError("max_body_size must be positive")
        self.on_delivery = on_delivery
        self.on_moderation = on_moderation
        self.max_body_size = max_body_size
        self.deduplicator = deduplicator
        self._secrets = _secrets(secret)

    @property
    def has_secret(self) -> bool:
        """True when POSTs must carry the shared secret."""
        return bool(self._secrets)

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
    ) -> WebhookAnswer:
        """Answer one POST: authorize, bound and read the body, parse, dispatch."""
        if not self.authorize(token):
            logger.warning("routee %s callback refused: missing or wrong token", kind)
            return _FORBIDDEN
        too_large = self._check_length(content_length)
        if too_large is not None:
            return too_large
        size = 0
        chunks: list[bytes] = []
        async for chunk in body:
            size += len(chunk)
            if size > self.max_body_size:
                return self._too_large()
            chunks.append(chunk)
        return await self.dispatch(kind, b"".join(chunks))

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
        if dedup is not None and dedup.seen(dedup_key):
            logger.debug("routee callback %s dropped as a duplicate", ident)
            return _DUPLICATE
        try:
            result = handler(callback)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if dedup is not None:
                dedup.forget(dedup_key)
            logger.exception("routee callback handler failed (%s)", ident)
            return _HANDLER_FAILED
        except BaseException:  # cancelled: the key must not stay "seen"
            if dedup is not None:
                dedup.forget(dedup_key)
            raise
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
