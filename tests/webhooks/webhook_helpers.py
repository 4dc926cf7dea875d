"""Helpers of the webhook tests: real loopback servers for FastAPI (uvicorn) and aiohttp, and
:data:`INTEGRATIONS`, what a test needs of either framework to run one body against both."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import attrs
import uvicorn
from aiohttp import web
from fastapi import Depends, FastAPI, Request

from routee_viber_async import RouteeViberClient
from routee_viber_async.integrations import aiohttp as aiohttp_integration
from routee_viber_async.integrations.aiohttp import ROUTEE_CLIENT, routee_client_ctx, webhook_routes
from routee_viber_async.integrations.fastapi import (
    DELIVERY_ROUTE,
    STATE_KEY,
    get_routee_client,
    routee_lifespan,
    webhook_router,
)

#: ``async with serve(**router_options) as base_url``.
ServeWebhooks = Callable[..., AbstractAsyncContextManager[str]]


@asynccontextmanager
async def serve_asgi(app: Any, *, access_log: bool = False) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL.

    uvicorn's own ``X-Forwarded-For`` handling is off: the tests send that header to check the
    receiver's ``trusted_proxies``, and ``request.client`` must stay the real peer.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def serve_aiohttp(app: web.Application, *, access_log: bool = False) -> AsyncIterator[str]:
    """Serve an aiohttp app on a free loopback port; yields its base URL.

    With ``access_log``, requests are logged as aiohttp does by default (``aiohttp.access``).
    """
    logger = logging.getLogger("aiohttp.access") if access_log else None
    runner = web.AppRunner(app, access_log=logger, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_fastapi_router(access_log: bool = False, **options: Any) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(webhook_router(**options))
    async with serve_asgi(app, access_log=access_log) as url:
        yield url


@asynccontextmanager
async def serve_aiohttp_routes(access_log: bool = False, **options: Any) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(webhook_routes(**options))
    async with serve_aiohttp(app, access_log=access_log) as url:
        yield url


# -- the two integrations, side by side: one test body drives either ----------------------------


def fastapi_app(**options: Any) -> FastAPI:
    """A FastAPI app with ``webhook_router(**options)``."""
    app = FastAPI()
    app.include_router(webhook_router(**options))
    return app


def aiohttp_app(**options: Any) -> web.Application:
    """An aiohttp app with ``webhook_routes(**options)``."""
    app = web.Application()
    app.add_routes(webhook_routes(**options))
    return app


async def _ignore(callback: object) -> None:
    pass


@asynccontextmanager
async def serve_fastapi_with_client(
    factory: Callable[[], RouteeViberClient],
) -> AsyncIterator[str]:
    """An app whose lifespan opens the client; ``GET /client`` tells which client it got."""
    app = FastAPI(lifespan=routee_lifespan(client_factory=factory))
    app.include_router(webhook_router(on_delivery=_ignore))

    @app.get("/client")
    async def which(
        request: Request, client: Annotated[RouteeViberClient, Depends(get_routee_client)]
    ) -> dict[str, Any]:
        return {
            "id": id(client),
            "stored": client is getattr(request.app.state, STATE_KEY),
            "callback_url": str(request.url_for(DELIVERY_ROUTE)),
        }

    async with serve_asgi(app) as base:
        yield base


@asynccontextmanager
async def serve_aiohttp_with_client(
    factory: Callable[[], RouteeViberClient],
) -> AsyncIterator[str]:
    """An app whose cleanup_ctx opens the client; ``GET /client`` tells which client it got."""
    app = web.Application()
    app.add_routes(webhook_routes(on_delivery=_ignore))
    app.cleanup_ctx.append(routee_client_ctx(ROUTEE_CLIENT, client_factory=factory))

    async def which(request: web.Request) -> web.Response:
        client = request.app[ROUTEE_CLIENT]
        path = request.app.router[aiohttp_integration.DELIVERY_ROUTE].url_for()
        return web.json_response(
            {"id": id(client), "stored": True, "callback_url": str(request.url.join(path))}
        )

    app.router.add_get("/client", which)
    async with serve_aiohttp(app) as base:
        yield base


@attrs.frozen
class Integration:
    """One framework's integration, as the tests drive it."""

    name: str
    #: ``async with serve(**router_options) as base_url``.
    serve: ServeWebhooks
    #: The framework's app with the endpoints of ``**router_options``.
    app: Callable[..., Any]
    #: ``path_for(app, route_name, **path_params)``: the path the framework builds for a route.
    path_for: Callable[..., str]
    #: ``async with serve_with_client(client_factory) as base_url``: see above.
    serve_with_client: Callable[[Callable[[], RouteeViberClient]], AbstractAsyncContextManager[str]]
    #: The builder of the endpoints (``webhook_router``, ``webhook_routes``).
    endpoints: Callable[..., Any]
    #: The logger of the server's access log.
    access_logger: str


INTEGRATIONS = [
    Integration(
        name="fastapi",
        serve=serve_fastapi_router,
        app=fastapi_app,
        path_for=lambda app, name, **params: app.url_path_for(name, **params),
        serve_with_client=serve_fastapi_with_client,
        endpoints=webhook_router,
        access_logger="uvicorn.access",
    ),
    Integration(
        name="aiohttp",
        serve=serve_aiohttp_routes,
        app=aiohttp_app,
        path_for=lambda app, name, **params: str(app.router[name].url_for(**params)),
        serve_with_client=serve_aiohttp_with_client,
        endpoints=webhook_routes,
        access_logger="aiohttp.access",
    ),
]
