"""Helpers of the integration tests: templates to create, and a webhook receiver on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from routee_viber_async import (
    CreateTemplate,
    RouteeViberClient,
    SendMessage,
    Template,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    TemplateStatus,
    VarExample,
)
from routee_viber_async.sandbox import Sandbox

#: ``await make_sandbox(**options)``: a started sandbox with ``FAST`` plus ``options``.
MakeSandbox = Callable[..., Awaitable[Sandbox]]
#: ``make_client(sandbox, **options)``: a client of that sandbox.
MakeClient = Callable[..., RouteeViberClient]

TO = "+306912345678"
PIN = "482910"

#: Sandbox options for fast tests (every delay a few hundredths of a second).
FAST: dict[str, Any] = {
    "moderation_delay": 0.02,
    "delivery_delay": 0.02,
    "callback_retry_delay": 0.02,
    "callback_timeout": 2.0,
    "seed": 11,
}


def otp_template(text: str = "Your code is {{pin}}.", **options: Any) -> CreateTemplate:
    return CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin")],
        [TemplateLocale("en", text)],
        [VarExample("pin", "123456")],
        **options,
    )


def order_template() -> CreateTemplate:
    return CreateTemplate(
        TemplateCategory.TRANSACTIONAL,
        [TemplateParam("user_name"), TemplateParam("order_id")],
        [TemplateLocale("en", "Hello {{user_name}}, order {{order_id}} is ready.")],
        [VarExample("user_name", "Alex"), VarExample("order_id", "4829")],
    )


def otp_message(sender: str, template_id: str, **changes: Any) -> SendMessage:
    fields: dict[str, Any] = {
        "sender_info_tracking_id": sender,
        "to": TO,
        "template_id": template_id,
        "template_lang": "en",
        "template_params": {"pin": PIN},
    }
    fields.update(changes)
    return SendMessage(**fields)


async def wait_for_status(
    client: RouteeViberClient, template_id: str, within: float = 3.0
) -> Template:
    """Poll the template until moderation decided (APPROVED or REJECTED)."""
    async with asyncio.timeout(within):
        while True:
            template = await client.templates.get(template_id)
            assert template.status is not None
            if template.status != TemplateStatus.PENDING_MODERATION:
                return template
            await asyncio.sleep(0.01)


class Receiver:
    """A webhook receiver on loopback: records every JSON body POSTed to it, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    async def _handle(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        body = await request.read()
        async with self._changed:
            self.received.append((request.match_info["name"], body))
            self._changed.notify_all()
        return web.Response(status=204)

    def bodies(self, name: str) -> list[bytes]:
        return [body for path, body in self.received if path == name]

    async def wait_for(self, name: str, count: int, within: float = 3.0) -> list[bytes]:
        """Wait until ``count`` bodies arrived at ``/name``; returns them."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.bodies(name)) >= count)
        return self.bodies(name)
