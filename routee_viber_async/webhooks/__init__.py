"""Receiving Routee's callbacks: parsers, duplicate dropping, and waiting for a final status.

Routee POSTs two different payloads, usually to two URLs (seed 001): a **delivery callback** to
a send's ``callbackUrl`` and a **moderation callback** to a template's ``callbackUrl``::

    from routee_viber_async.webhooks import parse_callback, parse_delivery_callback

    callback = parse_delivery_callback(request_body)   # bytes, str or a decoded dict
    callback.tracking_id, callback.status.name          # "304177c4-...", DeliveryStatus.DELIVERED

A malformed body raises :class:`~routee_viber_async.ValidationError` naming the field (never its
value). Routee retries a callback until it gets a 2xx, so drop repeats by ``callback.key`` with a
:class:`Deduplicator`, and resolve ``await waiter.wait(tracking_id)`` with a
:class:`DeliveryWaiter` fed by the delivery endpoint.

Ready-made endpoints: :func:`routee_viber_async.integrations.fastapi.webhook_router` and
:func:`routee_viber_async.integrations.aiohttp.webhook_routes` (this module imports neither
framework). Routee does not sign callbacks: protect them with a secret in the URL (a path token
is recommended), keep it out of the access log with :class:`RedactTokenFilter`, and optionally
confirm final statuses with ``verify_with=client`` and restrict sources with ``allow_from=``
(:class:`SourceAllowlist`, :data:`ROUTEE_CALLBACK_HOST`).
"""

import attrs as _attrs

from ._dedup import Deduplicator
from ._parse import (
    CallbackBody,
    CallbackKind,
    callback_kind,
    parse_callback,
    parse_delivery_callback,
    parse_moderation_callback,
)
from ._receiver import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DeliveryHandler,
    EndpointKind,
    ModerationHandler,
    SupportsTrackingGet,
    WebhookAnswer,
    WebhookReceiver,
    is_json_content_type,
    with_token,
)
from ._redact import DEFAULT_TOKEN_PATHS, RedactTokenFilter
from ._schema import callback_json_schema
from ._sources import (
    DEFAULT_REFRESH_EVERY,
    ROUTEE_CALLBACK_HOST,
    Resolver,
    SourceAllowlist,
)
from ._waiter import DeliveryOutcome, DeliveryWaiter, SupportsTracking

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_REFRESH_EVERY",
    "DEFAULT_TOKEN_PATHS",
    "ROUTEE_CALLBACK_HOST",
    "CallbackBody",
    "CallbackKind",
    "Deduplicator",
    "DeliveryHandler",
    "DeliveryOutcome",
    "DeliveryWaiter",
    "EndpointKind",
    "ModerationHandler",
    "RedactTokenFilter",
    "Resolver",
    "SourceAllowlist",
    "SupportsTracking",
    "SupportsTrackingGet",
    "WebhookAnswer",
    "WebhookReceiver",
    "callback_json_schema",
    "callback_kind",
    "is_json_content_type",
    "parse_callback",
    "parse_delivery_callback",
    "parse_moderation_callback",
    "with_token",
]

# Reprs and tracebacks read ``routee_viber_async.webhooks.X`` (annotations resolved first).
_attrs.resolve_types(WebhookAnswer)
for _cls in (
    Deduplicator,
    DeliveryWaiter,
    RedactTokenFilter,
    SourceAllowlist,
    WebhookAnswer,
    WebhookReceiver,
):
    _cls.__module__ = __name__
del _cls
