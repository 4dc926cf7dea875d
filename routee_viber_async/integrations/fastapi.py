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
403 for a missing or wrong token (or a source outside ``allow_from``), 408 for a body that did
not arrive within ``body_timeout``, 413 above ``max_body_size``, 415 for a non-JSON
``Content-Type`` and 500 when the handler raised (see
:mod:`routee_viber_async.webhooks._receiver` for the exact bodies). The OpenAPI schema documents
the request bodies with the callbacks' JSON Schemas.
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
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_REFRESH_EVERY,
    DeliveryHandler,
    ModerationHandler,
    Resolver,
    SupportsTrackingGet,
    WebhookReceiver,
    callback_json_schema,
)
from ..webhooks._dedup import AnyDeduplicator
from ._common import (
    WebhookEndpoint,
    forwarded_for,
    has_path_token,
    make_client,
    request_token,
    webhook_endpoints,
)

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
    403: {"description": "Missing or wrong token, or a source outside `allow_from`"},
    408: {"description": "The body did not arrive within `body_timeout`"},
    413: {"description": "Body above the size limit"},
    415: {"description": "A Content-Type that is not JSON"},
    500: {"description": "The handler raised: Routee will retry"},
    503: {"description": "With `verify_with`: tracking could not be read, Routee will retry"},
}
_PATH_TOKEN_PARAMETER: Final[dict[str, Any]] = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The shared secret",
    "schema": {"type": "string"},
}


def _openapi_extra(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The operation's request body (the callback's JSON Schema) and path-token parameter."""
    extra: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": callback_json_schema(endpoint.kind)}},
        }
    }
    if has_path_token(endpoint.path):
        extra["parameters"] = [_PATH_TOKEN_PARAMETER]
    return extra


def webhook_router(
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
    taking the parsed callback. ``secret``: POSTs must carry it, as the ``{token}`` segment of a
    path such as ``"/routee/delivery/{token}"`` (recommended: build the URL with
    ``request.url_for(DELIVERY_ROUTE, token=SECRET)``) or else as ``?{token_param}=SECRET``
    (:func:`routee_viber_async.webhooks.with_token`); keep it out of the access log with
    :class:`~routee_viber_async.webhooks.RedactTokenFilter`. Without ``secret`` a warning is
    logged once when the application starts. ``deduplicator``: repeated callbacks are answered
    200 without calling the handler. ``verify_with``, ``allow_from``, ``trusted_proxies``,
    ``resolver``, ``refresh_every`` and ``body_timeout``: see
    :class:`~routee_viber_async.webhooks.WebhookReceiver` (the peer is ``request.client``, which
    uvicorn's ``--proxy-headers`` may already have taken from ``X-Forwarded-For``).
    ``router_options`` go to ``APIRouter`` (``prefix``, ``dependencies``, ...).
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

    @asynccontextmanager
    async def warn_at_startup(_: Any) -> AsyncIterator[None]:
        receiver.warn_if_unprotected()
        yield

    router = APIRouter(
        tags=list(tags) if tags is not None else ["routee"],
        lifespan=warn_at_startup,
        **router_options,
    )
    for endpoint in endpoints:
        router.add_api_route(
            endpoint.path,
            _endpoint(receiver, endpoint, token_param),
            methods=["POST"],
            name=endpoint.name,
            summary=endpoint.summary,
            response_class=Response,
            responses=_RESPONSES,
            openapi_extra=_openapi_extra(endpoint),
            include_in_schema=include_in_schema,
        )
    return router


def _endpoint(
    receiver: WebhookReceiver, endpoint: WebhookEndpoint, token_param: str
) -> Callable[[Request], Any]:
    async def receive_callback(request: Request) -> Response:
        client = request.client
        try:
            answer = await receiver.receive(
                endpoint.kind,
                token=request_token(
                    endpoint.path, request.path_params, request.query_params, token_param
                ),
                content_length=request.headers.get("content-length"),
                content_type=request.headers.get("content-type"),
                body=request.stream(),
                peer=client.host if client is not None else None,
                forwarded_for=forwarded_for(request.headers.getlist("x-forwarded-for")),
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        return Response(answer.content, status_code=answer.status, media_type="application/json")

    receive_callback.__name__ = f"routee_{endpoint.kind}_callback"
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
