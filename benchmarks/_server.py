"""The benchmark server: a fast fake Routee, run in a process of its own.

``python -m benchmarks._server`` binds an aiohttp app to ``127.0.0.1`` on a free port, prints
``PORT <n>`` on its first line of stdout and serves until stdin closes or it is terminated.
``python -m benchmarks._server --tls CHAIN.pem`` serves HTTPS with that key and certificate
chain (see :mod:`benchmarks._https`).
The client process measures only its own CPU, so the server's cost never enters the figures.

Routes (every answer is a fixed, pre-encoded JSON body shaped like Routee's):

- ``POST /oauth/token``: client-credentials grant (HTTP Basic ``bench:bench-secret``); a new
  token each time, valid ``expires_in`` seconds (``/admin/config``).
- ``POST /viber/transactional/messages``: Routee's send answer; 401 for an unknown, revoked or
  expired bearer token.
- ``POST /flaky/viber/transactional/messages``: the same, except that every ``flaky_every``-th
  answer (20: 5 %) is a 503.
- ``GET /viber/transactional/templates/{id}``: an approved OTP template (``{{pin}}``,
  ``{{minutes}}``, locale ``en``), what ``send-many`` fetches before its preflight.
- ``GET /admin/stats``, ``POST /admin/reset``,
  ``POST /admin/config?expires_in=&flaky_every=&latency=`` (``latency``: seconds each send
  waits before its answer), ``POST /admin/revoke`` (every issued token becomes invalid): the
  benchmark's controls. The stats count the sends of each wall-clock second (``per_second``).

The handlers check the bearer token with one dict lookup and answer with pre-built bytes, and
access logging is off: the server stays faster than any client it is measured against.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import sys
import time
from typing import Any

import orjson
from aiohttp import web

__all__ = ["APP_ID", "APP_SECRET", "SEND_ANSWER", "make_app", "main"]

APP_ID = "bench"
APP_SECRET = "bench-secret"
_BASIC = "Basic " + base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode("ascii")

#: What Routee answers to a send (seed 001, "POST /viber/transactional/messages — response").
SEND_ANSWER: dict[str, Any] = {
    "trackingId": "6f0c7a52-2f5e-4b0f-9d0c-6a3b1f1e2d4c",
    "deliveryScope": "PRIMARY_DEVICE",
    "seq": 1747719911946000,
    "to": "+306912345678",
    "from": "RouteeBench",
    "status": {"status": "QUEUED", "date": "2026-05-20T05:45:13.606Z"},
    "price": 0.0205,
}
_SEND_BODY = orjson.dumps(SEND_ANSWER)
_UNAUTHORIZED_BODY = orjson.dumps(
    {"code": "401", "developerMessage": "Invalid access token", "message": "Unauthorized"}
)
_UNAVAILABLE_BODY = orjson.dumps(
    {"code": "503", "developerMessage": "Service unavailable", "message": "Try again later"}
)
_JSON = "application/json"


class _State:
    def __init__(self) -> None:
        self.tokens: dict[str, float] = {}  # "Bearer <value>" -> expiry (monotonic)
        self.counter = itertools.count(1)
        self.expires_in = 3600.0
        self.flaky_every = 20
        self.latency = 0.0
        self.reset()

    def reset(self) -> None:
        self.sends = 0
        self.flaky_sends = 0
        self.unavailable = 0
        self.unauthorized = 0
        self.token_fetches = 0
        self.per_second: collections.Counter[int] = collections.Counter()


_STATE = web.AppKey("state", _State)


def _authorized(state: _State, request: web.Request) -> bool:
    expires = state.tokens.get(request.headers.get("Authorization", ""))
    if expires is None or expires <= time.monotonic():
        state.unauthorized += 1
        return False
    return True


async def _token(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    await request.read()
    if request.headers.get("Authorization") != _BASIC:
        return web.Response(status=401, body=b'{"error":"invalid_client"}', content_type=_JSON)
    state.token_fetches += 1
    value = f"bench-token-{next(state.counter)}"
    state.tokens[f"Bearer {value}"] = time.monotonic() + state.expires_in
    body = {
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": state.expires_in,
        "scope": "viber",
    }
    return web.Response(body=orjson.dumps(body), content_type=_JSON)


async def _send(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    await request.read()
    if not _authorized(state, request):
        return web.Response(status=401, body=_UNAUTHORIZED_BODY, content_type=_JSON)
    state.sends += 1
    state.per_second[int(time.time())] += 1
    if state.latency:
        await asyncio.sleep(state.latency)
    return web.Response(body=_SEND_BODY, content_type=_JSON)


#: The template ``send-many`` fetches before its preflight (the benchmark's OTP template).
TEMPLATE_ANSWER: dict[str, Any] = {
    "id": "bench-otp-template",
    "category": "OTP",
    "templateStatus": "APPROVED",
    "params": [{"name": "pin", "type": "TEXT"}, {"name": "minutes", "type": "TEXT"}],
    "locales": [{"lang": "en", "template": "Code {{pin}}, valid {{minutes}} min"}],
}


async def _template(request: web.Request) -> web.Response:
    if not _authorized(request.app[_STATE], request):
        return web.Response(status=401, body=_UNAUTHORIZED_BODY, content_type=_JSON)
    return web.Response(body=orjson.dumps(TEMPLATE_ANSWER), content_type=_JSON)


async def _flaky_send(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    await request.read()
    if not _authorized(state, request):
        return web.Response(status=401, body=_UNAUTHORIZED_BODY, content_type=_JSON)
    state.flaky_sends += 1
    if state.flaky_sends % state.flaky_every == 0:
        state.unavailable += 1
        return web.Response(status=503, body=_UNAVAILABLE_BODY, content_type=_JSON)
    state.sends += 1
    return web.Response(body=_SEND_BODY, content_type=_JSON)


async def _stats(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    stats = {
        "sends": state.sends,
        "flaky_sends": state.flaky_sends,
        "unavailable": state.unavailable,
        "unauthorized": state.unauthorized,
        "token_fetches": state.token_fetches,
        "server_cpu": time.process_time(),
        "per_second": sorted(state.per_second.items()),
    }
    return web.Response(body=orjson.dumps(stats), content_type=_JSON)


async def _reset(request: web.Request) -> web.Response:
    request.app[_STATE].reset()
    return web.Response(body=b"{}", content_type=_JSON)


async def _config(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    query = request.query
    if "expires_in" in query:
        state.expires_in = float(query["expires_in"])
    if "flaky_every" in query:
        state.flaky_every = int(query["flaky_every"])
    if "latency" in query:
        state.latency = float(query["latency"])
    return web.Response(body=b"{}", content_type=_JSON)


async def _revoke(request: web.Request) -> web.Response:
    request.app[_STATE].tokens.clear()
    return web.Response(body=b"{}", content_type=_JSON)


def make_app() -> web.Application:
    """The fake Routee (see the module docstring)."""
    app = web.Application()
    app[_STATE] = _State()
    app.router.add_post("/oauth/token", _token)
    app.router.add_post("/viber/transactional/messages", _send)
    app.router.add_post("/flaky/viber/transactional/messages", _flaky_send)
    app.router.add_get("/viber/transactional/templates/{template_id}", _template)
    app.router.add_get("/admin/stats", _stats)
    app.router.add_post("/admin/reset", _reset)
    app.router.add_post("/admin/config", _config)
    app.router.add_post("/admin/revoke", _revoke)
    return app


async def _serve(tls_chain: str | None) -> None:
    import asyncio
    import ssl

    context = None
    if tls_chain is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_chain)
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our stdin (or terminates us).
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


def main() -> None:
    """Serve until stdin closes (HTTPS with ``--tls CHAIN.pem``)."""
    import asyncio

    args = sys.argv[1:]
    tls_chain = args[1] if args[:1] == ["--tls"] and len(args) == 2 else None
    if args and tls_chain is None:
        sys.exit("usage: python -m benchmarks._server [--tls CHAIN.pem]")
    asyncio.run(_serve(tls_chain))


if __name__ == "__main__":
    main()
