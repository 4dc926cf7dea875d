"""aiohttp: routes that receive Routee's callbacks, and one client per application.

::

    from aiohttp import web
    from routee_viber_async.integrations.aiohttp import (
        ROUTEE_CLIENT, routee_client_ctx, webhook_routes,
    )

    async def on_delivery(callback: DeliveryCallback) -> None:
        ...  # raise to answer 500: Routee will retry

    app = web.Application()
    app.add_routes(webhook_routes(on_delivery=on_delivery, secret="s3cret"))
    app.cleanup_ctx.append(routee_client_ctx(ROUTEE_CLIENT))   # RouteeViberClient.from_env()

    async def status(request: web.Request) -> web.Response:
        client = request.app[ROUTEE_CLIENT]
        ...

The answers are the same as the FastAPI router's: 200 ``{"ok": true}``, 400 for a malformed
body, 403 for a missing or wrong token (or a source outside ``allow_from``), 408 for a body that
did not arrive within ``body_timeout``, 413 above ``max_body_size``, 415 for a non-JSON
``Content-Type``, 500 when the handler raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ..webhooks import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_REFRESH_EVERY,
    DeliveryHandler,
    ModerationHandler,
    Resolver,
    SupportsTrackingGet,
    WebhookReceiver,
)
from ..webhooks._dedup import AnyDeduplicator
from ._common import (
    WebhookEndpoint,
    forwarded_for,
    make_client,
    request_token,
    webhook_endpoints,
)

if TYPE_CHECKING:
    from .._client import RouteeViberClient

__all__ = [
    "COMBINED_ROUTE",
    "DELIVERY_ROUTE",
    "MODERATION_ROUTE",
    "ROUTEE_CLIENT",
    "routee_client_ctx",
    "webhook_routes",
]

#: Route names, for ``request.app.router[DELIVERY_ROUTE].url_for()``.
DELIVERY_ROUTE: Final = "routee_delivery_callback"
MODERATION_ROUTE: Final = "routee_moderation_callback"
COMBINED_ROUTE: Final = "routee_callback"

#: The default key under which :func:`routee_client_ctx` stores the client.
ROUTEE_CLIENT: web.AppKey[RouteeViberClient] = web.AppKey("routee_client")

_READ_CHUNK = 16 * 1024


def webhook_routes(
    *,
    on_delivery: DeliveryHandler | None = None,
    on_moderation: ModerationHandler | None = None,
    secret: str | Iterable[str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    delivery_path: str | None = "/routee/delivery",
    moderation_path: str | None = "/routee/moderation",
    combined_path: str | None = None,
    deduplicator: AnyDeduplicator | None = None,
    token_param: str = "token",
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    verify_with: SupportsTrackingGet | None = None,
    allow_from: Iterable[str] | None = None,
    trusted_proxies: Iterable[str] = (),
    resolver: Resolver | None = None,
    refresh_every: float = DEFAULT_REFRESH_EVERY,
) -> list[web.RouteDef]:
    """POST routes for Routee's delivery and moderation callbacks: ``app.add_routes(...)``.

    The same endpoints and options as
    :func:`routee_viber_async.integrations.fastapi.webhook_router`: ``POST {delivery_path}``
    when ``on_delivery`` is given, ``POST {moderation_path}`` when ``on_moderation`` is given,
    ``POST {combined_path}`` (either kind) when given; a path with ``{token}``
    (``"/routee/delivery/{token}"``) takes the secret as that segment. The body is read in chunks
    and refused with 413 as soon as it passes ``max_body_size``, whatever the application's
    ``client_max_size``. Without ``secret``, a warning is logged once, here (the app's set-up):
    anybody can forge callbacks. The peer is ``request.remote``.
    """
    receiver = WebhookReceiver(
        on_delivery=on_delivery,
        on_moderation=on_moderation,
        secret=secret,
        max_body_size=max_body_size,
        deduplicator=deduplicator,
        body_timeout=body_timeout,
        verify_with=verify_with,
        allow_from=allow_from,
        trusted_proxies=trusted_proxies,
        resolver=resolver,
        refresh_every=refresh_every,
    )
    endpoints = webhook_endpoints(
        delivery=on_delivery is not None,
        moderation=on_moderation is not None,
        delivery_path=delivery_path,
        moderation_path=moderation_path,
        combined_path=combined_path,
        names=(DELIVERY_ROUTE, MODERATION_ROUTE, COMBINED_ROUTE),
    )
    receiver.warn_if_unprotected()
    return [_route(receiver, endpoint, token_param) for endpoint in endpoints]


def _route(receiver: WebhookReceiver, endpoint: WebhookEndpoint, token_param: str) -> web.RouteDef:
    async def receive_callback(request: web.Request) -> web.Response:
        answer = await receiver.receive(
            endpoint.kind,
            token=request_token(endpoint.path, request.match_info, request.query, token_param),
            content_length=request.headers.get("Content-Length"),
            content_type=request.headers.get("Content-Type"),
            body=request.content.iter_chunked(_READ_CHUNK),
            peer=request.remote,
            forwarded_for=forwarded_for(request.headers.getall("X-Forwarded-For", [])),
        )
        return web.Response(
            body=answer.content, status=answer.status, content_type="application/json"
        )

    return web.post(endpoint.path, receive_callback, name=endpoint.name)


def routee_client_ctx(
    app_key: web.AppKey[RouteeViberClient] = ROUTEE_CLIENT,
    /,
    *,
    client_factory: Callable[[], RouteeViberClient] | None = None,
    **client_options: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that opens one ``RouteeViberClient`` under ``app[app_key]``.

    ``app.cleanup_ctx.append(routee_client_ctx(ROUTEE_CLIENT, credentials=...))``. The client is
    built by ``client_factory()``, else by ``RouteeViberClient(**client_options)``, else by
    ``RouteeViberClient.from_env()``; it is closed when the application shuts down.
    """

    async def routee_client(app: web.Application) -> AsyncIterator[None]:
        client = make_client(client_factory, client_options)
        try:
            app[app_key] = client
            yield
        finally:
            await client.close()

    return routee_client
