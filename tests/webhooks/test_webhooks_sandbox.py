"""End to end: the sandbox POSTs real moderation and delivery callbacks to our webhook apps.

The client sends through the sandbox with a ``callbackUrl`` pointing at a FastAPI app served by
uvicorn or an aiohttp app (each test runs for both), and the sandbox delivers the callbacks
there as Routee would, retries included.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from webhook_helpers import ServeWebhooks, serve_asgi

from routee_viber_async import (
    CreateTemplate,
    DeliveryCallback,
    DeliveryStatus,
    ModerationCallback,
    RouteeViberClient,
    SendMessage,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    TemplateStatus,
    TrackingRecord,
    VarExample,
)
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox
from routee_viber_async.webhooks import Deduplicator, DeliveryWaiter, with_token

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi_service.py"
SECRET = "e2e-secret"
FAST: dict[str, Any] = {
    "moderation_delay": 0.02,
    "delivery_delay": 0.02,
    "callback_retry_delay": 0.02,
    "callback_timeout": 2.0,
    "seed": 7,
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(**FAST) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[RouteeViberClient]:
    async with RouteeViberClient(
        credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
    ) as client:
        yield client


def otp_template(callback_url: str | None = None) -> CreateTemplate:
    return CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin")],
        [TemplateLocale("en", "Your code is {{pin}}.")],
        [VarExample("pin", "123456")],
        callback_url=callback_url,
    )


def otp(sandbox: Sandbox, template_id: str, callback_url: str) -> SendMessage:
    return SendMessage(
        sandbox.sender_id,
        "+306912345678",
        template_id,
        "en",
        {"pin": "482910"},
        callback_url=callback_url,
    )


class Handlers:
    def __init__(self, waiter: DeliveryWaiter, fail_first: int = 0) -> None:
        self.waiter = waiter
        self.deliveries: list[DeliveryCallback] = []
        self.moderations: asyncio.Queue[ModerationCallback] = asyncio.Queue()
        self.fail_first = fail_first

    async def on_delivery(self, callback: DeliveryCallback) -> None:
        self.deliveries.append(callback)
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("try again later")
        self.waiter.feed(callback)

    async def on_moderation(self, callback: ModerationCallback) -> None:
        await self.moderations.put(callback)


async def test_sandbox_callbacks_reach_the_app_and_resolve_the_waiter(
    serve_webhooks: ServeWebhooks, sandbox: Sandbox, client: RouteeViberClient
) -> None:
    handlers = Handlers(DeliveryWaiter(client, fallback_after=None))
    async with serve_webhooks(
        on_delivery=handlers.on_delivery,
        on_moderation=handlers.on_moderation,
        secret=SECRET,
        deduplicator=Deduplicator(),
    ) as base:
        moderation_url = with_token(f"{base}/routee/moderation", SECRET)
        template = await client.templates.create(sandbox.sender_id, otp_template(moderation_url))
        moderation = await asyncio.wait_for(handlers.moderations.get(), 5)
        assert moderation.template_id == template.template_id
        assert moderation.template_status is TemplateStatus.APPROVED

        delivery_url = with_token(f"{base}/routee/delivery", SECRET)
        sent = await client.messages.send(otp(sandbox, template.template_id, delivery_url))
        outcome = await handlers.waiter.wait(sent.tracking_id, timeout=5)
        await sandbox.wait_idle()

    assert isinstance(outcome, DeliveryCallback)
    assert outcome.tracking_id == sent.tracking_id
    assert outcome.status.name is DeliveryStatus.DELIVERED
    assert outcome.transactional_template is not None
    assert outcome.transactional_template.template_id == template.template_id
    assert outcome.transactional_template.seq == sent.seq
    assert outcome.transactional_template.template_params is None
    assert [c.status.name for c in handlers.deliveries] == ["SENT", "DELIVERED"]
    assert sandbox.callbacks_sent == 3
    assert sandbox.callbacks_failed == 0
    assert all(record.ok and record.attempts == 1 for record in sandbox.callback_log)


async def test_a_failing_handler_gets_the_sandbox_s_retry_once(
    serve_webhooks: ServeWebhooks, sandbox: Sandbox, client: RouteeViberClient
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    handlers = Handlers(DeliveryWaiter(fallback_after=None), fail_first=1)
    async with serve_webhooks(
        on_delivery=handlers.on_delivery, deduplicator=Deduplicator()
    ) as base:
        sent = await client.messages.send(otp(sandbox, template_id, f"{base}/routee/delivery"))
        outcome = await handlers.waiter.wait(sent.tracking_id, timeout=5)
        await sandbox.wait_idle()

    assert isinstance(outcome, DeliveryCallback)
    # SENT failed with 500 and the sandbox retried it (maybe after DELIVERED came).
    assert sorted(c.status.name for c in handlers.deliveries) == ["DELIVERED", "SENT", "SENT"]
    attempts = {r.payload["status"]["name"]: (r.attempts, r.status) for r in sandbox.callback_log}
    assert attempts == {"SENT": (2, 200), "DELIVERED": (1, 200)}


async def test_a_wrong_token_is_refused_and_the_waiter_falls_back_to_polling(
    serve_webhooks: ServeWebhooks, sandbox: Sandbox, client: RouteeViberClient
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    handlers = Handlers(DeliveryWaiter(client, fallback_after=0.05, poll_interval=0.02))
    async with serve_webhooks(on_delivery=handlers.on_delivery, secret=SECRET) as base:
        url = with_token(f"{base}/routee/delivery", "a-guess")
        sent = await client.messages.send(otp(sandbox, template_id, url))
        outcome = await handlers.waiter.wait(sent.tracking_id, timeout=5)
        await sandbox.wait_idle()

    assert isinstance(outcome, TrackingRecord)
    assert outcome.is_final
    assert handlers.deliveries == []
    assert sandbox.callbacks_sent == 0
    assert sandbox.callbacks_failed == 2  # SENT and DELIVERED, each after every attempt
    assert {record.status for record in sandbox.callback_log} == {403}


async def test_a_failed_delivery_resolves_the_waiter_too(
    serve_webhooks: ServeWebhooks,
) -> None:
    async with (
        Sandbox(**{**FAST, "failed_share": 1.0}) as sandbox,
        RouteeViberClient(
            credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
        ) as client,
    ):
        template_id = (await approved_template(client, sandbox)).template_id
        waiter = DeliveryWaiter(fallback_after=None)
        async with serve_webhooks(on_delivery=waiter.feed) as base:
            sent = await client.messages.send(otp(sandbox, template_id, f"{base}/routee/delivery"))
            outcome = await waiter.wait(sent.tracking_id, timeout=5)
            await sandbox.wait_idle()
    assert isinstance(outcome, DeliveryCallback)
    assert outcome.status.name is DeliveryStatus.FAILED
    assert not outcome.status.name.is_success


# -- the README's FastAPI service (examples/fastapi_service.py) --------------------------------


def load_example() -> Any:
    name = f"fastapi_service_under_test_{id(object())}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


async def test_the_example_service_against_the_sandbox(
    sandbox: Sandbox, client: RouteeViberClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    for name in ("ROUTEE_ACCESS_TOKEN", "PUBLIC_BASE_URL", "ROUTEE_TEMPLATE_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTEE_APPLICATION_ID", sandbox.credentials.application_id)
    monkeypatch.setenv("ROUTEE_APPLICATION_SECRET", sandbox.credentials.application_secret)
    monkeypatch.setenv("ROUTEE_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("ROUTEE_AUTH_URL", sandbox.auth_url)
    monkeypatch.setenv("ROUTEE_SENDER_ID", sandbox.sender_id)
    monkeypatch.setenv("ROUTEE_OTP_TEMPLATE_ID", template_id)
    monkeypatch.setenv("ROUTEE_CALLBACK_SECRET", SECRET)

    example = load_example()
    async with serve_asgi(example.app) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/otp", json={"to": "+306912345678"}) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        async with http.post(f"{base}/otp", json={"to": "not a number"}) as response:
            invalid = (response.status, await response.text())
        await sandbox.wait_idle()

    assert answer["status"] == "DELIVERED"
    assert answer["delivered"] is True
    assert answer["via"] == "callback"
    message = sandbox.message(answer["tracking_id"])
    assert message.callback_url == f"{base}/routee/delivery/{SECRET}"
    assert sandbox.callbacks_sent == 2  # SENT and DELIVERED, each accepted at once
    assert sandbox.callbacks_failed == 0
    assert invalid[0] == 422
    assert "482910" not in invalid[1]


async def test_verify_with_the_client_drops_forged_final_statuses(
    serve_webhooks: ServeWebhooks,
) -> None:
    async with (
        Sandbox(**{**FAST, "failed_share": 1.0}) as sandbox,
        RouteeViberClient(
            credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
        ) as client,
        aiohttp.ClientSession() as http,
    ):
        template_id = (await approved_template(client, sandbox)).template_id
        handlers = Handlers(DeliveryWaiter(fallback_after=None))
        async with serve_webhooks(
            on_delivery=handlers.on_delivery, deduplicator=Deduplicator(), verify_with=client
        ) as base:
            url = f"{base}/routee/delivery"
            sent = await client.messages.send(otp(sandbox, template_id, url))
            outcome = await handlers.waiter.wait(sent.tracking_id, timeout=5)
            await sandbox.wait_idle()
            answers = []
            for tracking_id in (sent.tracking_id, "no-such-tracking-id"):
                forged = {"trackingId": tracking_id, "status": {"name": "DELIVERED"}}
                async with http.post(url, json=forged) as response:
                    answers.append((response.status, await response.json()))
    assert isinstance(outcome, DeliveryCallback)
    assert outcome.status.name is DeliveryStatus.FAILED  # the genuine one, confirmed
    assert [c.status.name for c in handlers.deliveries] == ["SENT", "FAILED"]
    assert answers == [(200, {"ok": True})] * 2  # answered, never handled
    assert sandbox.callbacks_failed == 0
