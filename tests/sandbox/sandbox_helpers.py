"""Helpers for the sandbox tests: a raw HTTP API caller and a callback receiver."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from routee_viber_async import ClientCredentials
from routee_viber_async.sandbox import Sandbox

#: Options for fast sandboxes in tests (every delay ≤ 0.05 s).
FAST: dict[str, Any] = {
    "moderation_delay": 0.01,
    "delivery_delay": 0.01,
    "callback_retry_delay": 0.01,
    "callback_timeout": 2.0,
    "seed": 7,
}

TO = "+306912345678"


def template_body(
    text: str = "Hello {{user_name}}, order {{order_id}} is ready.",
    *,
    category: str = "Transactional",
    params: list[str] | None = None,
    lang: str = "en",
    **extra: Any,
) -> dict[str, Any]:
    """A create-template body whose params and examples match the text's placeholders."""
    if params is None:
        params = list(dict.fromkeys(re.findall(r"\{\{(\w+)\}\}", text)))
    body: dict[str, Any] = {
        "category": category,
        "params": [{"name": name, "type": "TEXT"} for name in params],
        "locales": [{"lang": lang, "template": text}],
        "varExample": [{"name": name, "example": "x"} for name in params],
    }
    body.update(extra)
    return body


OTP_TEXT = "Your code is {{pin}}."

#: A field value meaning "leave this field out of the request".
DROP: Any = object()


def basic(application_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` header value."""
    return "Basic " + base64.b64encode(f"{application_id}:{secret}".encode()).decode()


class Reply:
    """One HTTP answer: status, parsed JSON body and headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r})"


class Api:
    """Raw requests against a sandbox, with a token fetched through its OAuth endpoint."""

    def __init__(self, sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
        self.sb = sandbox
        self.http = http
        self._token: str | None = None

    async def token(self, creds: ClientCredentials | None = None) -> str:
        """A token for ``creds`` (the sandbox's own by default); kept for later calls."""
        creds = creds or self.sb.credentials
        async with self.http.post(
            self.sb.auth_url,
            headers={"Authorization": basic(creds.application_id, creds.application_secret)},
            data={"grant_type": "client_credentials"},
        ) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        token: str = body["access_token"]
        self._token = token
        return token

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
        auth: bool = True,
    ) -> Reply:
        headers = {}
        if auth:
            bearer = token if token is not None else (self._token or await self.token())
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.http.request(
            method, self.sb.base_url + path, json=json, params=params, headers=headers
        ) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return Reply(response.status, body, response.headers)

    async def create_template(
        self, body: dict[str, Any] | None = None, *, sender: str | None = None
    ) -> Reply:
        return await self.call(
            "POST",
            "/viber/transactional/templates",
            json=body if body is not None else template_body(),
            params={"senderInfoTrackingId": sender or self.sb.sender_id},
        )

    async def approved_template(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await self.create_template(body)
        assert reply.status == 200, reply
        self.sb.approve(reply.body["templateId"])
        template: dict[str, Any] = reply.body
        return template

    async def send(self, template: Mapping[str, Any] | None = None, **fields: Any) -> Reply:
        body: dict[str, Any] = {"senderInfoTrackingId": self.sb.sender_id, "to": TO}
        if template is not None:
            body["templateId"] = template["templateId"]
            body["templateLang"] = template["locales"][0]["lang"]
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not DROP}
        return await self.call("POST", "/viber/transactional/messages", json=body)

    async def send_otp(self, **fields: Any) -> Reply:
        body: dict[str, Any] = {
            "senderInfoTrackingId": self.sb.sender_id,
            "to": TO,
            "templateParams": {"pin": "482910"},
        }
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not DROP}
        return await self.call("POST", "/viber/otp", json=body)


class Receiver:
    """A webhook receiver on loopback that records every JSON body POSTed to it.

    ``fail_first`` answers the first N POSTs with HTTP 500.
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        assert request.content_type == "application/json"
        body = await request.json()
        async with self._changed:
            self.received.append(body)
            self._changed.notify_all()
        return web.Response(status=204)

    async def wait_for(self, count: int, within: float = 3.0) -> list[dict[str, Any]]:
        """Wait (at most ``within`` seconds) until ``count`` bodies arrived; returns them all."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


#: ``make_api(**options)`` fixture: a fresh started sandbox with ``FAST`` plus ``options``.
MakeApi = Callable[..., Awaitable[Api]]
#: ``make_receiver(fail_first=0)`` fixture.
MakeReceiver = Callable[..., Awaitable[Receiver]]
