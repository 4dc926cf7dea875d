"""The inbox's JSON API under ``/_sandbox/`` (issue 24), through aiohttp's test client.

The test client serves a second application on the sandbox's own state; the sandbox itself is
started too, so that its callback dispatcher runs and the callbacks reach real receivers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from internals import sandbox_app
from sandbox_helpers import FAST, OTP_TEXT, TO, Receiver, basic, template_body

from routee_viber_async import RouteeViberClient, SendMessage, Template
from routee_viber_async.sandbox import Sandbox
from routee_viber_async.sandbox._inbox import mask_callback_url

PIN = "918273"
OTHER = "+306900000002"
TOKEN = "s3cretTokenSegment0123456789"

Sandboxes = Callable[..., Coroutine[Any, Any, tuple[Sandbox, "Inbox"]]]


class Inbox:
    """aiohttp's test client on a sandbox's application, with the API's own token."""

    def __init__(self, sandbox: Sandbox, client: TestClient[Any, Any]) -> None:
        self.sb = sandbox
        self.client = client
        self._token = ""

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.client.request(method, path, **kwargs) as response:
            return response.status, await response.json()

    async def token(self) -> str:
        if not self._token:
            creds = self.sb.credentials
            status, body = await self.json(
                "POST",
                "/oauth/token",
                headers={"Authorization": basic(creds.application_id, creds.application_secret)},
                data={"grant_type": "client_credentials"},
            )
            assert status == 200, body
            self._token = body["access_token"]
        return self._token

    async def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        return await self.json(method, path, headers=headers, **kwargs)

    async def template(self, text: str = OTP_TEXT, *, approve: bool = True, **extra: Any) -> str:
        body = template_body(text, category="OTP", **extra)
        status, created = await self.api(
            "POST",
            "/viber/transactional/templates",
            json=body,
            params={"senderInfoTrackingId": self.sb.sender_id},
        )
        assert status == 200, created
        if approve:
            self.sb.approve(created["templateId"])
        template_id: str = created["templateId"]
        return template_id

    async def send(self, template_id: str, to: str = TO, **fields: Any) -> tuple[int, Any]:
        body = {
            "senderInfoTrackingId": self.sb.sender_id,
            "to": to,
            "templateId": template_id,
            "templateLang": "en",
            "templateParams": {"pin": PIN},
            **fields,
        }
        return await self.api("POST", "/viber/transactional/messages", json=body)


@pytest.fixture
async def inboxes() -> AsyncIterator[Callable[..., Coroutine[Any, Any, Inbox]]]:
    """``await inboxes(**options)``: a started sandbox (FAST + options) and a test client."""
    opened: list[tuple[Sandbox, TestClient[Any, Any]]] = []

    async def make(**options: Any) -> Inbox:
        sandbox = Sandbox(**{**FAST, **options})
        await sandbox.start()
        client: TestClient[Any, Any] = TestClient(TestServer(sandbox_app(sandbox)))
        opened.append((sandbox, client))
        await client.start_server()
        return Inbox(sandbox, client)

    yield make
    for sandbox, client in opened:
        await client.close()
        await sandbox.close()


async def test_the_inbox_shows_each_message_as_the_handset_does_grouped_newest_first(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]], receiver: Receiver
) -> None:
    inbox = await inboxes()
    template_id = await inbox.template("Your code is {{pin}}, valid {{minutes}} min.")
    hook = receiver.url.replace("/hook", f"/hook/{TOKEN}")
    first = await inbox.send(
        template_id, templateParams={"pin": "111111", "minutes": "5"}, callbackUrl=hook
    )
    await inbox.send(template_id, to=OTHER, templateParams={"pin": "222222", "minutes": "5"})
    last = await inbox.send(
        template_id, templateParams={"pin": "333333", "minutes": "9"}, callbackUrl=hook
    )
    assert first[0] == last[0] == 200
    await inbox.sb.wait_idle()

    status, page = await inbox.json("GET", "/_sandbox/inbox")
    assert status == 200
    assert page["total"] == 2
    assert page["messageCount"] == 3
    assert [t["to"] for t in page["threads"]] == [TO, OTHER]  # the latest written to first
    thread = page["threads"][0]
    assert thread["count"] == 2
    texts = [m["text"] for m in thread["messages"]]
    assert texts == ["Your code is 333333, valid 9 min.", "Your code is 111111, valid 5 min."]
    newest = thread["messages"][0]
    assert newest["trackingId"] == last[1]["trackingId"]
    assert newest["seq"] == last[1]["seq"]
    assert newest["senderInfoTrackingId"] == inbox.sb.sender_id
    assert newest["templateId"] == template_id
    assert newest["deliveryScope"] == "PRIMARY_DEVICE"
    assert [t["status"] for t in newest["timeline"]] == ["QUEUED", "SENT", "DELIVERED"]
    assert all(t["date"].endswith("Z") for t in newest["timeline"])
    callbacks = newest["callbacks"]
    assert [c["event"] for c in callbacks] == ["SENT", "DELIVERED"]
    for callback in callbacks:
        assert callback["kind"] == "delivery"
        assert callback["ok"] is True
        assert callback["httpStatus"] == 204
        assert callback["attempts"] == 1
        assert callback["latencyMs"] >= 0
        assert TOKEN not in callback["url"]
        assert callback["url"].endswith("/hook/***")

    status, one = await inbox.json("GET", f"/_sandbox/inbox?to={OTHER}")
    assert [t["to"] for t in one["threads"]] == [OTHER]
    status, second_page = await inbox.json("GET", "/_sandbox/inbox?offset=1&limit=1")
    assert [t["to"] for t in second_page["threads"]] == [OTHER]
    status, bad = await inbox.json("GET", "/_sandbox/inbox?limit=many")
    assert status == 400
    assert "limit" in bad["developerMessage"]


async def test_a_callback_that_keeps_failing_shows_its_status_and_attempts(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]],
    make_receiver: Callable[..., Coroutine[Any, Any, Receiver]],
) -> None:
    inbox = await inboxes(callback_attempts=2)
    failing = await make_receiver(fail_first=100)
    template_id = await inbox.template()
    await inbox.send(template_id, callbackUrl=failing.url)
    await inbox.sb.wait_idle()

    [message] = inbox.sb.inbox(TO)
    assert [c["event"] for c in message.callbacks] == ["SENT", "DELIVERED"]
    assert all(c["httpStatus"] == 500 and c["attempts"] == 2 for c in message.callbacks)
    assert not any(c["ok"] for c in message.callbacks)


async def test_the_pin_is_shown_by_the_inbox_only(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inbox = await inboxes()
    template_id = await inbox.template()
    status, sent = await inbox.send(template_id)
    assert status == 200
    await inbox.sb.wait_idle()

    [message] = inbox.sb.inbox(TO)
    assert message.text == f"Your code is {PIN}."
    assert PIN not in repr(message)
    assert PIN not in repr(inbox.sb.messages)
    assert PIN not in caplog.text
    status, tracking = await inbox.api("GET", f"/viber/tracking/{sent['trackingId']}")
    assert PIN not in str(tracking)
    status, listing = await inbox.json("GET", "/sandbox/messages")
    assert PIN not in str(listing)


async def test_manual_moderation_waits_for_the_buttons_and_fires_the_callback(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]], receiver: Receiver
) -> None:
    inbox = await inboxes(moderation="manual")
    approved = await inbox.template(approve=False, callbackUrl=receiver.url)
    rejected = await inbox.template(approve=False, callbackUrl=receiver.url)
    await inbox.sb.wait_idle()  # nothing is scheduled: manual moderation decides nothing
    status, listing = await inbox.json("GET", "/_sandbox/templates")
    assert listing["moderation"] == "manual"
    by_id = {t["templateId"]: t for t in listing["templates"]}
    assert by_id[approved]["status"] == by_id[rejected]["status"] == "PENDING_MODERATION"
    assert by_id[approved]["languages"] == ["en"]
    assert receiver.received == []

    status, body = await inbox.json("POST", f"/_sandbox/templates/{approved}/approve")
    assert (status, body["status"]) == (200, "APPROVED")
    status, body = await inbox.json(
        "POST", f"/_sandbox/templates/{rejected}/reject", json={"reason": "Too vague."}
    )
    assert (status, body["status"], body["rejectionReason"]) == (200, "REJECTED", "Too vague.")
    received = await receiver.wait_for(2)
    assert {(r["templateId"], r["templateStatus"]) for r in received} == {
        (approved, "APPROVED"),
        (rejected, "REJECTED"),
    }
    await inbox.sb.wait_idle()
    status, listing = await inbox.json("GET", "/_sandbox/templates")
    by_id = {t["templateId"]: t for t in listing["templates"]}
    [callback] = by_id[approved]["callbacks"]
    assert (callback["kind"], callback["event"], callback["httpStatus"]) == (
        "moderation",
        "APPROVED",
        204,
    )
    status, _ = await inbox.json("POST", "/_sandbox/templates/nope/approve")
    assert status == 404


async def test_fates_for_a_recipient_and_for_the_next_messages(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]], receiver: Receiver
) -> None:
    inbox = await inboxes()
    template_id = await inbox.template()
    status, _ = await inbox.json(
        "POST", "/_sandbox/fates", json={"fate": "failed", "reason": "Phone off.", "to": TO}
    )
    assert status == 200
    status, state = await inbox.json("POST", "/_sandbox/fates", json={"fate": "seen", "count": 1})
    assert state["fates"]["recipients"][TO] == {"fate": "failed", "reason": "Phone off."}
    assert state["fates"]["next"] == [{"fate": "seen", "reason": None}]
    inbox.sb.set_fate("never_delivered")
    inbox.sb.set_fate("expired")

    await inbox.send(template_id, callbackUrl=receiver.url)  # TO: its own fate, kept
    for number in ("+306900000011", "+306900000012", "+306900000013", "+306900000014"):
        await inbox.send(template_id, to=number)
    await inbox.send(template_id, callbackUrl=receiver.url)
    await inbox.sb.wait_idle()

    failed = inbox.sb.inbox(TO)
    assert [m.status for m in failed] == ["FAILED", "FAILED"]
    assert failed[0].failure_reason == "Phone off."
    assert [c["event"] for c in failed[0].callbacks] == ["SENT", "FAILED"]
    timelines = {
        number: [status for status, _ in inbox.sb.inbox(number)[0].timeline]
        for number in ("+306900000011", "+306900000012", "+306900000013", "+306900000014")
    }
    assert timelines == {
        "+306900000011": ["QUEUED", "SENT", "DELIVERED", "SEEN"],
        "+306900000012": ["QUEUED", "SENT"],  # never delivered
        "+306900000013": ["QUEUED", "SENT", "EXPIRED"],
        "+306900000014": ["QUEUED", "SENT", "DELIVERED"],  # the usual draw again
    }

    status, state = await inbox.json("DELETE", f"/_sandbox/fates?to={TO}")
    assert state["fates"]["recipients"] == {}
    status, bad = await inbox.json("POST", "/_sandbox/fates", json={"fate": "lost"})
    assert status == 400
    assert "fate must be one of" in bad["developerMessage"]


async def test_fault_toggles_and_reset(inboxes: Callable[..., Coroutine[Any, Any, Inbox]]) -> None:
    inbox = await inboxes()
    template_id = await inbox.template()
    await inbox.send(template_id)
    status, state = await inbox.json(
        "POST", "/_sandbox/faults", json={"rate_limit": 1.0, "retryAfter": 2}
    )
    assert (status, state["faults"]["rate_limit"], state["faults"]["retryAfter"]) == (200, 1, 2)
    headers = {"Authorization": f"Bearer {await inbox.token()}"}
    async with inbox.client.get(f"/viber/tracking/{'x' * 8}", headers=headers) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
    status, _ = await inbox.json("POST", "/_sandbox/faults", json={"rate_limit": 3})
    assert status == 400
    inbox.sb.set_fate("failed", to=OTHER)

    status, state = await inbox.json("POST", "/_sandbox/reset")
    assert status == 200
    assert state["messageCount"] == state["recipientCount"] == 0
    assert state["faults"]["rate_limit"] == 0
    assert state["faultCounts"]["rate_limit"] == 0
    assert state["fates"] == {"recipients": {}, "next": []}
    assert inbox.sb.messages == []
    status, _ = await inbox.send(template_id)  # templates and tokens survive a reset
    assert status == 200
    await inbox.sb.wait_idle()
    assert [m.status for m in inbox.sb.inbox(TO)] == ["DELIVERED"]


async def test_a_reset_stops_the_messages_in_flight(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]], receiver: Receiver
) -> None:
    inbox = await inboxes(delivery_delay=0.05)
    template_id = await inbox.template()
    await inbox.send(template_id, callbackUrl=receiver.url)
    inbox.sb.reset()
    await inbox.sb.wait_idle()
    assert receiver.received == []
    assert inbox.sb.inbox(TO) == []


async def _next_event(lines: asyncio.StreamReader | Any) -> int:
    """The version of the stream's next ``change`` event."""
    while True:
        line = (await lines.readline()).decode()
        if line.startswith("data: "):
            return int(line[6:])


async def test_the_event_stream_tells_of_changes(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]],
) -> None:
    inbox = await inboxes()
    template_id = await inbox.template()
    async with asyncio.timeout(10), inbox.client.get("/_sandbox/events") as events:
        assert events.headers["Content-Type"] == "text/event-stream"
        first = await _next_event(events.content)
        await inbox.send(template_id)
        assert await _next_event(events.content) > first


async def test_the_page_is_served_with_ui_only(
    inboxes: Callable[..., Coroutine[Any, Any, Inbox]],
) -> None:
    with_ui = await inboxes(ui=True)
    async with with_ui.client.get("/") as page:
        assert page.status == 200
        html = await page.text()
    assert "<title>Routee sandbox inbox</title>" in html
    for asset in ("app.js", "style.css"):
        assert f"/_sandbox/ui/{asset}" in html
        async with with_ui.client.get(f"/_sandbox/ui/{asset}") as response:
            assert response.status == 200
    without = await inboxes()
    async with without.client.get("/") as page:
        assert page.status == 404
    status, _ = await without.json("GET", "/_sandbox/state")  # the API is always there
    assert status == 200


async def test_a_host_that_is_not_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match=r"0\.0\.0\.0: it is not a loopback address"):
        await Sandbox(host="0.0.0.0").start()
    async with Sandbox(host="0.0.0.0", allow_remote=True) as sandbox:
        assert sandbox.port > 0
    async with Sandbox(host="localhost") as sandbox:
        assert sandbox.port > 0


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://127.0.0.1:9/routee/delivery/Ab3dEf6hIj9kLm2n", "http://127.0.0.1:9/routee/delivery/***"),
        ("https://u:p@example.com/hook?token=abc&x=1", "https://***@example.com/hook?token=***&x=1"),
        ("http://h/routee/delivery/AbcDefGhiJklMnoPq", "http://h/routee/delivery/***"),
        ("http://h/hook?secret=abc&key=k1", "http://h/hook?secret=***&key=***"),
        ("http://example.com/hooks/delivery-status-callback", "http://example.com/hooks/delivery-status-callback"),
    ],
)  # fmt: skip
def test_callback_urls_are_shown_with_their_token_masked(url: str, masked: str) -> None:
    assert mask_callback_url(url) == masked


async def test_the_plugin_sandbox_gives_a_recipients_rendered_messages(
    routee_sandbox: Sandbox, routee_client: RouteeViberClient, routee_template: Template
) -> None:
    sender, template_id = routee_sandbox.sender_id, routee_template.template_id
    for pin in ("101010", "202020"):
        await routee_client.messages.send(SendMessage(sender, TO, template_id, "en", {"pin": pin}))
    await routee_sandbox.wait_idle()
    messages = routee_sandbox.inbox(TO)
    assert [m.text for m in messages] == ["Your code is 202020.", "Your code is 101010."]
    assert [m.status for m in messages] == ["DELIVERED", "DELIVERED"]
    assert routee_sandbox.inbox(OTHER) == []
