"""Template moderation: automatic approval and rejection, manual decisions, moderation callbacks."""

from __future__ import annotations

import asyncio

from sandbox_helpers import Api, MakeApi, MakeReceiver, Receiver, template_body

TEMPLATES = "/viber/transactional/templates"


async def test_template_is_approved_after_the_delay_with_a_callback(
    api: Api, receiver: Receiver
) -> None:
    created = (await api.create_template(template_body(callbackUrl=receiver.url))).body
    assert created["status"] == "PENDING_MODERATION"
    (callback,) = await receiver.wait_for(1)
    assert callback == {
        "templateId": created["templateId"],
        "templateStatus": "APPROVED",
        "templateBody": "Hello {{user_name}}, order {{order_id}} is ready.",
        "variables": ["user_name", "order_id"],
    }
    reply = await api.call("GET", f"{TEMPLATES}/{created['templateId']}")
    assert reply.body["status"] == "APPROVED"
    assert "rejectionReason" not in reply.body


async def test_template_with_a_url_is_rejected_with_a_reason(api: Api, receiver: Receiver) -> None:
    body = template_body("Hi {{user_name}}, pay at example.com/pay now.", callbackUrl=receiver.url)
    created = (await api.create_template(body)).body
    (callback,) = await receiver.wait_for(1)
    assert callback["templateStatus"] == "REJECTED"
    assert "URL" in callback["rejectionReason"]
    assert callback["variables"] == ["user_name"]
    reply = await api.call("GET", f"{TEMPLATES}/{created['templateId']}")
    assert reply.body["status"] == "REJECTED"
    assert reply.body["rejectionReason"] == callback["rejectionReason"]


async def test_manual_moderation_waits_for_approve(make_api: MakeApi, receiver: Receiver) -> None:
    api = await make_api(moderation_delay=None)
    created = (await api.create_template(template_body(callbackUrl=receiver.url))).body
    await asyncio.sleep(0.05)
    assert api.sb.template_status(created["templateId"]) == "PENDING_MODERATION"
    assert receiver.received == []
    api.sb.approve(created["templateId"])
    (callback,) = await receiver.wait_for(1)
    assert callback["templateStatus"] == "APPROVED"


async def test_reject_sends_the_reason(make_api: MakeApi, receiver: Receiver) -> None:
    api = await make_api(moderation_delay=None)
    created = (await api.create_template(template_body(callbackUrl=receiver.url))).body
    api.sb.reject(created["templateId"], "Too vague.")
    (callback,) = await receiver.wait_for(1)
    assert callback["templateStatus"] == "REJECTED"
    assert callback["rejectionReason"] == "Too vague."
    reply = await api.call("GET", f"{TEMPLATES}/{created['templateId']}")
    assert reply.body["rejectionReason"] == "Too vague."


async def test_moderation_callback_goes_to_the_patched_url(
    make_api: MakeApi, make_receiver: MakeReceiver
) -> None:
    api = await make_api(moderation_delay=None)
    first = await make_receiver()
    second = await make_receiver()
    created = (await api.create_template(template_body(callbackUrl=first.url))).body
    path = f"{TEMPLATES}/{created['templateId']}"
    await api.call("PATCH", path, json={"lifecycleCallbackUrl": second.url})
    api.sb.approve(created["templateId"])
    await second.wait_for(1)
    await api.sb.wait_idle()
    assert first.received == []


async def test_no_callback_without_a_callback_url(api: Api) -> None:
    await api.create_template()
    await asyncio.sleep(0.05)
    await api.sb.wait_idle()
    assert api.sb.callbacks_sent == 0
    assert api.sb.callback_attempts_made == 0


async def test_deleted_template_is_not_moderated(make_api: MakeApi, receiver: Receiver) -> None:
    # The moderation is due long after the DELETE lands, even on a loaded machine (with the
    # suite's 10 ms it could come first); wait_idle returns once it has been due.
    api = await make_api(moderation_delay=0.5)
    created = (await api.create_template(template_body(callbackUrl=receiver.url))).body
    await api.call("DELETE", f"{TEMPLATES}/{created['templateId']}")
    await api.sb.wait_idle()
    assert receiver.received == []


async def test_moderation_over_http_for_a_separate_process(
    make_api: MakeApi, receiver: Receiver
) -> None:
    api = await make_api(moderation_delay=None)
    created = (await api.create_template(template_body(callbackUrl=receiver.url))).body
    tid = created["templateId"]
    reply = await api.call(
        "POST", f"/sandbox/templates/{tid}/reject", json={"reason": "No."}, auth=False
    )
    assert reply.status == 200
    assert reply.body["status"] == "REJECTED"
    reply = await api.call("POST", f"/sandbox/templates/{tid}/approve", auth=False)
    assert reply.body["status"] == "APPROVED"
    assert "rejectionReason" not in reply.body
    callbacks = await receiver.wait_for(2)
    assert [c["templateStatus"] for c in callbacks] == ["REJECTED", "APPROVED"]
