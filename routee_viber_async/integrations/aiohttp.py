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
body, 413 above ``max_body_size``, 403 for a missing or wrong token, 500 when the handler raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ..webhooks import (
    DEFAULT_MAX_BODY_SIZE,
    Deduplicator,
    DeliveryHandler,
    EndpointKind,
    ModerationHandler,
    WebhookReceiver,
)
from ._common import make_client

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
    deduplicator: Deduplicator | None = None,
    token_param: str = "token",
) -> list[web.RouteDef]:
    """POST routes for Routee's delivery and moderation callbacks: ``app.add_routes(...)``.

    The same endpoints and options as
    :func:`routee_viber_async.integrations.fastapi.webhook_router`: ``POST {delivery_path}``
    when ``on_delivery`` is given, ``POST {moderation_path}`` when ``on_moderation`` is given,
    ``POST {combined_path}`` (either kind) when given. The body is read in chunks and refused
    with 413 as soon as it passes ``max_body_size``, whatever the application's
    ``client_max_size``.
    """
    receiver = WebhookReceiver(
        on_delivery=on_delivery,
        on_moderation=on_moderation,
        secret=secret,
        max_body_size=max_body_size,
        deduplicator=deduplicator,
    )
    routes: list[web.RouteDef] = []
    if on_delivery is not None and delivery_path is not None:
        routes.append(_route(receiver, "delivery", delivery_path, DELIVERY_ROUTE, token_param))
    if on_moderation is not None and moderation_path is not None:
        routes.append(
            _route(receiver, "moderation", moderation_path, MODERATION_ROUTE, token_param)
        )
    if combined_path is not None:
        routes.append(_route(receiver, "any", combined_path, COMBINED_ROUTE, token_param))
    if not routes:
        raise ValueError("no endpoint: give a handler with its path, or combined_path")
    return routes


def _route(
    receiver: WebhookReceiver, kind: EndpointKind, path: str, name: str, token_param: str
) -> web.RouteDef:
    async def receive_callback(request: web.Request) -> web.Response:
        answer = await receiver.receive(
            kind,
            token=request.query.get(token_param),
            content_length=request.headers.get("Content-Length"),
            body=request.content.iter_chunked(_READ_CHUNK),
        )
        return web.Response(
            body=answer.content, status=answer.status, content_type="application/json"
        )

    return web.post(path, receive_callback, name=name)


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
