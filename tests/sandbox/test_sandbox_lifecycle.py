"""The Sandbox object: lifecycle, addresses, options, ``serve``, inspection and the plugin."""

from __future__ import annotations

import asyncio
import io
import socket
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import FAST, Api, MakeApi

from routee_viber_async import RouteeViberClient, SendMessage
from routee_viber_async._auth import ClientCredentials
from routee_viber_async.sandbox import Sandbox, SandboxOptions, serve
from routee_viber_async.sandbox._context import DEFAULT_OTP_TEMPLATE_ID


async def test_addresses_and_credentials() -> None:
    async with Sandbox(**FAST) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:")
        assert sb.port > 0
        assert sb.auth_url == f"{sb.base_url}/oauth/token"
        assert isinstance(sb.credentials, ClientCredentials)
        assert sb.credentials.application_id
        assert sb.credentials.application_secret
        assert sb.sender_id == "sandbox-sender"
        assert sb.foreign_sender_id != sb.sender_id


async def test_each_sandbox_has_its_own_credentials() -> None:
    first, second = Sandbox(), Sandbox()
    assert first.credentials != second.credentials


async def test_credentials_and_sender_can_be_chosen(make_api: MakeApi) -> None:
    api = await make_api(application_id="app", application_secret="s3cret", sender_id="mine")
    assert api.sb.credentials == ClientCredentials("app", "s3cret")
    assert (await api.create_template(sender="mine")).status == 200


async def test_urls_need_a_started_sandbox() -> None:
    sb = Sandbox()
    with pytest.raises(RuntimeError, match="not started"):
        _ = sb.base_url


async def test_close_is_idempotent_and_final() -> None:
    sb = await Sandbox(**FAST).start()
    url = sb.base_url
    await sb.close()
    await sb.close()
    with pytest.raises(RuntimeError, match="closed"):
        await sb.start()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url + "/sandbox/messages")


async def test_close_drops_pending_deliveries(make_api: MakeApi) -> None:
    api = await make_api(delivery_delay=10, moderation_delay=None)
    template = await api.approved_template()
    await api.send(template, templateParams={"user_name": "A", "order_id": "1"})
    await api.sb.close()  # must not wait 20 s nor leave a timer behind
    assert api.sb.messages[0].status == "QUEUED"


async def test_a_given_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Sandbox(port=port, **FAST) as sb:
        assert sb.base_url == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "options",
    [
        {"failed_share": 1.5},
        {"failed_share": 0.7, "expired_share": 0.7},
        {"invalid_token_status": 500},
        {"delivery_delay": -1},
        {"callback_attempts": 0},
        {"token_ttl": 0},
        {"faults": {"rate_limit": 2}},
        {"fault_after_accept_share": -0.1},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Sandbox(**options)


def test_options_are_kept() -> None:
    sb = Sandbox(delivery_delay=0.1, seed=3)
    assert isinstance(sb.options, SandboxOptions)
    assert sb.options.delivery_delay == 0.1
    assert sb.options.invalid_token_status == 403
    assert sb.options.moderation_delay == 0.2


async def test_serve_prints_how_to_connect_and_runs_until_cancelled() -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve(out=out, **FAST))
    for _ in range(200):
        if "Ctrl+C" in out.getvalue():
            break
        await asyncio.sleep(0.01)
    text = out.getvalue()
    base_url = text.split("base URL:", 1)[1].split()[0]
    assert "/oauth/token" in text
    assert "application id:" in text
    assert "application secret:" in text
    assert "sender id:           sandbox-sender" in text
    # What the README's Quick start and the FastAPI example read, with a template that works.
    assert "export ROUTEE_SENDER_ID=sandbox-sender\n" in text
    template_id = text.split("export ROUTEE_OTP_TEMPLATE_ID=", 1)[1].split()[0]
    assert template_id == DEFAULT_OTP_TEMPLATE_ID
    async with aiohttp.ClientSession() as http, http.get(base_url + "/sandbox/messages") as resp:
        assert resp.status == 200
    # The printed template is one the Quick start can send with.
    credentials = ClientCredentials(
        text.split("application id:", 1)[1].split()[0],
        text.split("application secret:", 1)[1].split()[0],
    )
    auth_url = text.split("auth URL:", 1)[1].split()[0]
    async with RouteeViberClient(
        credentials=credentials, base_url=base_url, auth_url=auth_url
    ) as client:
        template = await client.templates.get(template_id)
        assert template.is_approved
        sent = await client.messages.send(
            SendMessage("sandbox-sender", "+306912345678", template_id, "en", {"pin": "482910"}),
            template=template,
        )
        assert sent.tracking_id
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_inspection_endpoint_lists_messages_without_params(api: Api) -> None:
    template = await api.approved_template()
    sent = (await api.send(template, templateParams={"user_name": "Zed", "order_id": "9"})).body
    await api.sb.wait_idle()
    reply = await api.call("GET", "/sandbox/messages", auth=False)
    assert reply.status == 200
    body = reply.body
    assert body["duplicateSeqCount"] == 0
    assert body["callbacksSent"] == 0
    assert set(body["faultCounts"]) >= {"rate_limit", "drop_connection"}
    (message,) = body["messages"]
    assert message["trackingId"] == sent["trackingId"]
    assert message["seq"] == sent["seq"]
    assert message["status"] == "DELIVERED"
    assert message["kind"] == "transactional_template"
    assert message["templateId"] == template["templateId"]
    assert "Zed" not in str(body)


async def test_sb_messages_snapshot(api: Api) -> None:
    template = await api.approved_template()
    sent = (await api.send(template, templateParams={"user_name": "A", "order_id": "1"})).body
    (message,) = api.sb.messages
    assert message == api.sb.message(sent["trackingId"])
    assert (message.to, message.template_id, message.kind) == (
        "+306912345678",
        template["templateId"],
        "transactional_template",
    )


async def test_unknown_routes_answer_json(api: Api) -> None:
    missing = await api.call("GET", "/viber/nothing-here")
    assert missing.status == 404
    assert missing.body["code"] == "404000000"
    wrong_method = await api.call("PUT", "/viber/transactional/messages")
    assert wrong_method.status == 405
    assert wrong_method.body["code"] == "405000000"


async def test_plugin_fixture_is_a_started_fast_sandbox(routee_sandbox: Sandbox) -> None:
    assert routee_sandbox.base_url.startswith("http://127.0.0.1:")
    assert routee_sandbox.options.delivery_delay <= 0.05
    assert routee_sandbox.options.moderation_delay is not None
    assert routee_sandbox.options.moderation_delay <= 0.05


class TestPluginOptionsOverride:
    @pytest.fixture
    def routee_sandbox_options(self, routee_sandbox_options: dict[str, Any]) -> dict[str, Any]:
        return {**routee_sandbox_options, "failed_share": 1.0}

    async def test_override_reaches_the_sandbox(self, routee_sandbox: Sandbox) -> None:
        assert routee_sandbox.options.failed_share == 1.0
