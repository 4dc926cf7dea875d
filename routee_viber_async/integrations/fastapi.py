"""FastAPI: endpoints that receive Routee's callbacks, and one client per application.

::

    from contextlib import asynccontextmanager
    from typing import Annotated

    from fastapi import Depends, FastAPI
    from routee_viber_async import DeliveryCallback, RouteeViberClient
    from routee_viber_async.integrations.fastapi import (
        get_routee_client, routee_lifespan, webhook_router,
    )
    from routee_viber_async.webhooks import Deduplicator

    async def on_delivery(callback: DeliveryCallback) -> None:
        ...  # raise to answer 500: Routee will retry

    app = FastAPI(lifespan=routee_lifespan())        # RouteeViberClient.from_env()
    app.include_router(
        webhook_router(on_delivery=on_delivery, secret="s3cret", deduplicator=Deduplicator())
    )

    @app.get("/status/{tracking_id}")
    async def status(
        tracking_id: str, client: Annotated[RouteeViberClient, Depends(get_routee_client)]
    ) -> dict[str, str]:
        record = await client.tracking.get(tracking_id)
        return {"status": str(record.status.status if record.status else None)}

Each endpoint answers 200 ``{"ok": true}`` once the handler returned, 400 for a malformed body,
413 above ``max_body_size``, 403 for a missing or wrong token and 500 when the handler raised
(see :mod:`routee_viber_async.webhooks._receiver` for the exact bodies).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

try:
    from fastapi import APIRouter, FastAPI, Request, Response
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "routee_viber_async.integrations.fastapi needs FastAPI; "
        "install the extra: pip install 'routee-viber-async[fastapi]'"
    ) from exc

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
    "DELIVERY_ROUTE",
    "COMBINED_ROUTE",
    "MODERATION_ROUTE",
    "STATE_KEY",
    "get_routee_client",
    "routee_lifespan",
    "webhook_router",
]

#: Route names, for ``request.url_for(DELIVERY_ROUTE)`` when building a ``callbackUrl``.
DELIVERY_ROUTE: Final = "routee_delivery_callback"
MODERATION_ROUTE: Final = "routee_moderation_callback"
COMBINED_ROUTE: Final = "routee_callback"

#: Where :func:`routee_lifespan` keeps the client: lifespan state and ``app.state``.
STATE_KEY: Final = "routee_client"

_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": 'Accepted: `{"ok": true}` (also for a dropped duplicate)'},
    400: {"description": "Malformed callback: the detail names the field"},
    403: {"description": "Missing or wrong token"},
    413: {"description": "Body above the size limit"},
    500: {"description": "The handler raised: Routee will retry"},
}
_REQUEST_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def webhook_router(
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
    include_in_schema: bool = True,
    tags: Sequence[str | Enum] | None = None,
    **router_options: Any,
) -> APIRouter:
    """An ``APIRouter`` with POST endpoints for Routee's delivery and moderation callbacks.

    - ``POST {delivery_path}`` (when ``on_delivery`` is given) takes delivery callbacks;
    - ``POST {moderation_path}`` (when ``on_moderation`` is given) takes moderation callbacks;
    - ``POST {combined_path}`` (when given) takes both, told apart by their keys; a kind with no
      handler is acknowledged and dropped.

    Handlers are coroutine functions (or plain functions, such as ``DeliveryWaiter.feed``)
    taking the parsed callback. ``secret``: POSTs must carry ``?{token_param}=SECRET`` (build the
    URL with :func:`routee_viber_async.webhooks.with_token`; keep the server's access log from
    recording it). ``deduplicator``: repeated callbacks are answered 200 without calling the
    handler. ``router_options`` go to ``APIRouter`` (``prefix``, ``dependencies``, ...).
    """
    receiver = WebhookReceiver(
        on_delivery=on_delivery,
        on_moderation=on_moderation,
        secret=secret,
        max_body_size=max_body_size,
        deduplicator=deduplicator,
    )
    router = APIRouter(tags=list(tags) if tags is not None else ["routee"], **router_options)
    routes: list[tuple[str, EndpointKind, str, str]] = []
    if on_delivery is not None and delivery_path is not None:
        routes.append((delivery_path, "delivery", DELIVERY_ROUTE, "Routee delivery callback"))
    if on_moderation is not None and moderation_path is not None:
        routes.append(
            (moderation_path, "moderation", MODERATION_ROUTE, "Routee moderation callback")
        )
    if combined_path is not None:
        routes.append((combined_path, "any", COMBINED_ROUTE, "Routee callback (either kind)"))
    if not routes:
        raise ValueError("no endpoint: give a handler with its path, or combined_path")
    for path, kind, name, summary in routes:
        router.add_api_route(
            path,
            _endpoint(receiver, kind, token_param),
            methods=["POST"],
            name=name,
            summary=summary,
            response_class=Response,
            responses=_RESPONSES,
            openapi_extra=_REQUEST_BODY,
            include_in_schema=include_in_schema,
        )
    return router


def _endpoint(
    receiver: WebhookReceiver, kind: EndpointKind, token_param: str
) -> Callable[[Request], Any]:
    async def receive_callback(request: Request) -> Response:
        try:
            answer = await receiver.receive(
                kind,
                token=request.query_params.get(token_param),
                content_length=request.headers.get("content-length"),
                body=request.stream(),
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        return Response(answer.content, status_code=answer.status, media_type="application/json")

    receive_callback.__name__ = f"routee_{kind}_callback"
    return receive_callback


def routee_lifespan(
    *,
    client_factory: Callable[[], RouteeViberClient] | None = None,
    **client_options: Any,
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    """A FastAPI ``lifespan`` that opens one ``RouteeViberClient`` and closes it on shutdown.

    The client is built by ``client_factory()``, else by ``RouteeViberClient(**client_options)``,
    else by ``RouteeViberClient.from_env()`` when neither is given. Endpoints get it with
    ``Depends(get_routee_client)``. To combine it with a lifespan of your own::

        routee = routee_lifespan()

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
            async with routee(app) as state:
                ...  # state["routee_client"] is the client
                yield state
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        client = make_client(client_factory, client_options)
        try:
            setattr(app.state, STATE_KEY, client)
            yield {STATE_KEY: client}
        finally:
            if getattr(app.state, STATE_KEY, None) is client:
                delattr(app.state, STATE_KEY)
            await client.close()

    return lifespan


def get_routee_client(request: Request) -> RouteeViberClient:
    """FastAPI dependency: the client opened by :func:`routee_lifespan`."""
    client = getattr(request.state, STATE_KEY, None)
    if client is None:
        client = getattr(request.app.state, STATE_KEY, None)
    if client is None:
        raise RuntimeError(
            "no RouteeViberClient: create the app with FastAPI(lifespan=routee_lifespan(...))"
        )
    return client  # type: ignore[no-any-return]
