"""The sandbox's web inbox in a real browser (issue 24): the three scenarios of the issue.

Each test opens the page first and never reloads it: what it sees arrives through the page's
live updates (Server-Sent Events).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from playwright.async_api import expect
from sandbox_helpers import Receiver

from routee_viber_async import RouteeViberClient, SendMessage, Template
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox

TO = "+306912345678"
TOKEN = "hookToken0123456789abcdef"
CLI_TIMEOUT = 120.0


async def _create_template_with_the_cli(sandbox: Sandbox, tmp_path: Path, callback_url: str) -> str:
    definition = {
        "category": "OTP",
        "params": [{"name": "pin", "type": "TEXT"}],
        "locales": [{"lang": "en", "template": "Your login code is {{pin}}."}],
        "varExample": [{"name": "pin", "example": "123456"}],
        "callbackUrl": callback_url,
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(definition))
    env = {
        **os.environ,
        "ROUTEE_BASE_URL": sandbox.base_url,
        "ROUTEE_AUTH_URL": sandbox.auth_url,
        "ROUTEE_APPLICATION_ID": sandbox.credentials.application_id,
        "ROUTEE_APPLICATION_SECRET": sandbox.credentials.application_secret,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", "templates", "create", str(path),
        "--sender", sandbox.sender_id,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(CLI_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    template_id: str = json.loads(out)["templateId"]
    return template_id


async def _send(
    client: RouteeViberClient, sandbox: Sandbox, template: Template, pin: str, **extra: Any
) -> str:
    sent = await client.messages.send(
        SendMessage(sandbox.sender_id, extra.pop("to", TO), template.template_id, "en",
                    {"pin": pin}, **extra),
        template=template,
    )  # fmt: skip
    return sent.tracking_id


async def test_approve_a_template_created_with_the_cli(
    page: Any, sandbox: Sandbox, receiver: Receiver, tmp_path: Path
) -> None:
    await page.goto(sandbox.inbox_url)
    await page.get_by_role("button", name="Templates").click()
    template_id = await _create_template_with_the_cli(sandbox, tmp_path, receiver.url)

    row = page.locator(f'tr[data-template-id="{template_id}"]')
    await expect(row.locator(".status")).to_have_text("PENDING_MODERATION")
    await expect(page.locator("#moderation-mode")).to_have_text("manual")
    await row.get_by_role("button", name="Approve").click()

    await expect(row.locator(".status")).to_have_text("APPROVED")
    callback = row.get_by_test_id("callback")
    await expect(callback).to_contain_text("APPROVED")
    await expect(callback).to_contain_text("HTTP 204")
    await expect(callback).to_contain_text("1 attempt")
    [received] = await receiver.wait_for(1, within=20)
    assert (received["templateId"], received["templateStatus"]) == (template_id, "APPROVED")
    assert sandbox.template_status(template_id) == "APPROVED"


async def test_an_otp_shows_with_its_pin_and_reaches_delivered_live(
    page: Any,
    sandbox: Sandbox,
    client: RouteeViberClient,
    receiver: Receiver,
    screenshots: Path,
) -> None:
    template = await approved_template(client, sandbox)
    await page.goto(sandbox.inbox_url)
    await expect(page.locator("#live")).to_have_text("live")
    hook = receiver.url.replace("/hook", f"/hook/{TOKEN}")

    await _send(client, sandbox, template, "112233", to="+306900000001", callback_url=hook)
    tracking_id = await _send(client, sandbox, template, "482910", callback_url=hook)

    thread = page.locator(f'[data-testid="thread"][data-to="{TO}"]')
    message = thread.locator(f'[data-tracking-id="{tracking_id}"]')
    await expect(message.get_by_test_id("text")).to_have_text("Your code is 482910.")
    await expect(message.locator(".when .status")).to_have_text("DELIVERED")
    await expect(message.locator(".timeline li")).to_have_count(3)
    await expect(message.locator(".timeline")).to_contain_text("QUEUED")
    await expect(message.get_by_test_id("callback")).to_have_count(2)
    await expect(message.get_by_test_id("callback").last).to_contain_text("DELIVERED")
    callbacks = await message.get_by_test_id("callback").all_inner_texts()
    assert all(TOKEN not in text and "/hook/***" in text for text in callbacks)
    # The newest thread comes first.
    await expect(page.get_by_test_id("thread").first).to_have_attribute("data-to", TO)
    await page.screenshot(path=str(screenshots / "inbox.png"), full_page=True)


async def test_a_recipient_set_to_fail_shows_failed_and_its_callback(
    page: Any, sandbox: Sandbox, client: RouteeViberClient, receiver: Receiver
) -> None:
    template = await approved_template(client, sandbox)
    await page.goto(sandbox.inbox_url)
    await page.get_by_role("button", name="Controls").click()
    await page.locator("#fate").select_option("failed")
    await page.locator("#fate-reason").fill("Handset unreachable")
    await page.locator('input[name="target"][value="recipient"]').check()
    await page.locator("#fate-to").fill(TO)
    await page.locator("#fate-apply").click()
    await expect(page.locator("#fates")).to_contain_text(f"{TO}: failed (Handset unreachable)")

    tracking_id = await _send(client, sandbox, template, "777000", callback_url=receiver.url)
    await page.get_by_role("button", name="Inbox").click()
    message = page.locator(f'[data-tracking-id="{tracking_id}"]')
    await expect(message.locator(".when .status")).to_have_text("FAILED")
    await expect(message.locator(".reason")).to_have_text("Handset unreachable")
    failed = message.get_by_test_id("callback").filter(has_text="FAILED")
    await expect(failed).to_contain_text("HTTP 204")
    received = await receiver.wait_for(2, within=20)
    assert [r["status"]["name"] for r in received] == ["SENT", "FAILED"]


async def test_fault_toggles_and_reset(
    page: Any, sandbox: Sandbox, client: RouteeViberClient
) -> None:
    template = await approved_template(client, sandbox)
    await _send(client, sandbox, template, "135790")
    await page.goto(sandbox.inbox_url)
    await expect(page.get_by_test_id("thread")).to_have_count(1)
    await page.get_by_role("button", name="Controls").click()
    await page.locator("#fault-share").fill("0.5")
    await page.locator("#retry-after").fill("2")

    def rate_limit_on(response: Any) -> bool:
        body = response.request.post_data or ""
        return response.url.endswith("/_sandbox/faults") and '"rate_limit":0.5' in body

    async with page.expect_response(rate_limit_on) as posted:
        await page.locator('[data-fault="rate_limit"]').check()
    state = await (await posted.value).json()
    assert (state["faults"]["rate_limit"], state["faults"]["retryAfter"]) == (0.5, 2)

    async with page.expect_response(lambda r: r.url.endswith("/_sandbox/reset")) as reset:
        await page.locator("#reset").click()
    assert (await (await reset.value).json())["faults"]["rate_limit"] == 0
    await expect(page.locator('[data-fault="rate_limit"]')).not_to_be_checked()
    await page.get_by_role("button", name="Inbox").click()
    await expect(page.locator("#threads")).to_have_text("No message yet.")
    assert sandbox.messages == []


async def test_a_rejection_reason_being_typed_survives_live_updates(
    page: Any, sandbox: Sandbox, receiver: Receiver, tmp_path: Path, screenshots: Path
) -> None:
    template_id = await _create_template_with_the_cli(sandbox, tmp_path, receiver.url)
    await page.goto(sandbox.inbox_url)
    await page.get_by_role("button", name="Templates").click()
    row = page.locator(f'tr[data-template-id="{template_id}"]')
    reason = row.get_by_label("rejection reason")
    await reason.fill("Says nothing about")
    # Another template arrives meanwhile: the list is rendered again under the user's hands.
    other = await _create_template_with_the_cli(sandbox, tmp_path, receiver.url)
    await expect(page.locator(f'tr[data-template-id="{other}"]')).to_have_count(1)
    await expect(reason).to_have_value("Says nothing about")
    await expect(reason).to_be_focused()
    await reason.press_sequentially(" the code")
    await row.get_by_role("button", name="Reject").click()

    await expect(row.locator(".status")).to_have_text("REJECTED")
    await expect(row).to_contain_text("Says nothing about the code")
    [received] = await receiver.wait_for(1, within=20)
    assert received["rejectionReason"] == "Says nothing about the code"
    await expect(row.get_by_test_id("callback")).to_contain_text("REJECTED")
    await page.screenshot(path=str(screenshots / "templates.png"), full_page=True)
