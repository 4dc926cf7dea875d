"""Helpers of the webhook tests: real loopback servers for FastAPI (uvicorn) and aiohttp."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from aiohttp import web
from fastapi import FastAPI

from routee_viber_async.integrations.aiohttp import webhook_routes
from routee_viber_async.integrations.fastapi import webhook_router

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
