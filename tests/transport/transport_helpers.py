"""Helpers of the transport tests: a fake Routee (auth server + API) for a loopback server.

``FakeRoutee`` serves ``POST /oauth/token`` (client-credentials grant, HTTP Basic) and every
method under ``/api/``. The API answers 401 to an unknown or revoked token, then whatever the
test scripted (``routee.script(...)``), then ``{"ok": true, "n": <hit number>}``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from routee_viber_async._transport import Transport

APP_ID = "app-id-4711"
APP_SECRET = "s3cr3t-APP-SECRET-value"

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]
MakeTransport = Callable[..., Transport]


@attrs.define
class Hit:
    """One request the fake API received."""

    method: str
    path: str
    query: dict[str, str]
    token: str | None
    body: bytes
    content_type: str | None
    at: float


def reply(
    status: int = 200,
    json: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
) -> Step:
    """A scripted answer."""

    async def step(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        if json is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(json, status=status, headers=headers)

    return step


class FakeRoutee:
    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/oauth/token", self._token)
        self.app.router.add_route("*", "/api/{tail:.*}", self._api)
        self.base_url = ""
        self.auth_url = ""
        self.expires_in: float = 3600
        self.auth_hits = 0
        self.auth_gate: asyncio.Event | None = None
        self.auth_script: list[Step] = []
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.static_tokens = {"static-token-STATIC"}
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = 0.0  # seconds every API answer is held
        self.release = asyncio.Event()  # ``hang`` steps wait for this
        self._script: list[Step] = []
        self.forbid_tokens: set[str] = set()  # tokens answered with 403

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Answer the next API requests with these steps, in order."""
        self._script.extend(steps)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        await self.release.wait()
        return web.json_response({"late": True})

    def revoke_all(self) -> None:
        self.revoked.update(self.issued)

    @property
    def api_hits(self) -> int:
        return len(self.hits)

    # -- handlers -----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self.auth_hits += 1
        if self.auth_gate is not None:
            await self.auth_gate.wait()
        if self.auth_script:
            return await self.auth_script.pop(0)(request)
        expected = "Basic " + base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != expected:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Bad client credentials"},
                status=401,
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"tok-{len(self.issued) + 1}-SECRETTOKEN"
        self.issued.append(token)
        return web.json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "scope": "viber",
            }
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.hits.append(
            Hit(
                request.method,
                "/" + request.match_info["tail"],
                dict(request.query),
                token,
                body,
                request.headers.get("Content-Type"),
                time.monotonic(),
            )
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            valid = token in self.static_tokens or (
                token in self.issued and token not in self.revoked
            )
            if not valid:
                return web.json_response({"error": "invalid_token"}, status=401)
            if token in self.forbid_tokens:
                return web.json_response({"code": "403000", "developerMessage": "nope"}, status=403)
            if self._script:
                return await self._script.pop(0)(request)
            return web.json_response({"ok": True, "n": len(self.hits)})
        finally:
            self.in_flight -= 1


async def wait_until(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``predicate`` on the loop until it holds (fails the test after ``within`` s)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)
