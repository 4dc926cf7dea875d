"""Delivery: status progression, delivery callbacks (seed 001's shape), tracking GET, ttl."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from sandbox_helpers import OTP_TEXT, TO, Api, MakeApi, MakeReceiver, Receiver, template_body

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
OTP_PARAMS = {"pin": "482910", "minutes": "5"}


async def _otp_template(api: Api) -> dict[str, Any]:
    return await api.approved_template(
        template_body(OTP_TEXT + " Valid {{minutes}} min.", category="OTP")
    )


async def test_message_moves_to_delivered_with_a_callback_per_change(
    api: Api, receiver: Receiver
) -> None:
    template = await _otp_template(api)
    sent = (
        await api.send(template, templateParams=OTP_PARAMS, callbackUrl=receiver.url, seq=99)
    ).body
    callbacks = await receiver.wait_for(2)
    assert [c["status"]["name"] for c in callbacks] == ["SENT", "DELIVERED"]
    for callback in callbacks:
        assert set(callback) == {
            "trackingId",
            "to",
            "status",
            "messageKind",
            "transactionalTemplate",
            "createdAt",
            "templateId",
        }
        assert "body" not in callback
        assert callback["trackingId"] == sent["trackingId"]
        assert callback["to"] == TO
        assert set(callback["status"]) == {"name", "updatedDate"}
        assert ISO_MS_Z.fullmatch(callback["status"]["updatedDate"])
        assert callback["messageKind"] == "transactional_template"
        assert callback["transactionalTemplate"] == {
            "templateId": template["templateId"],
            "templateLang": "en",
            "deliveryScope": "PRIMARY_DEVICE",
            "seq": 99,
        }  # no templateParams in a delivery callback
        assert callback["templateId"] == template["templateId"]
        assert ISO_MS_Z.fullmatch(callback["createdAt"])
    await api.sb.wait_idle()
    assert api.sb.messages[0].status == "DELIVERED"
    assert api.sb.callbacks_sent == 2


async def test_tracking_get_shape_with_pin_masked(api: Api) -> None:
    template = await _otp_template(api)
    sent = (await api.send(template, templateParams=OTP_PARAMS, label="otp")).body
    await api.sb.wait_idle()
    reply = await api.call("GET", f"/viber/tracking/{sent['trackingId']}")
    assert reply.status == 200
    body = reply.body
    assert body["trackingId"] == sent["trackingId"]
    assert body["to"] == TO
    assert body["from"] == "Sandbox"
    assert set(body["status"]) == {"status", "date"}
    assert body["status"]["status"] == "DELIVERED"
    assert ISO_MS_Z.fullmatch(body["status"]["date"])
    assert body["messageKind"] == "transactional_template"
    assert body["transactionalTemplate"] == {
        "templateId": template["templateId"],
        "templateLang": "en",
        "deliveryScope": "PRIMARY_DEVICE",
        "seq": sent["seq"],
        "templateParams": {"pin": "***", "minutes": "5"},
    }
    assert body["templateId"] == template["templateId"]
    assert ISO_MS_Z.fullmatch(body["createdAt"])
    assert body["label"] == "otp"
    assert "482910" not in str(body)


async def test_tracking_of_an_unknown_id_is_404(api: Api) -> None:
    reply = await api.call("GET", f"/viber/tracking/{uuid.uuid4()}")
    assert reply.status == 404
    assert reply.body["code"] == "404000000"


async def test_status_is_queued_then_sent_then_delivered(make_api: MakeApi) -> None:
    api = await make_api(delivery_delay=0.05, moderation_delay=None)
    template = await api.approved_template()
    params = {"user_name": "A", "order_id": "1"}
    sent = (await api.send(template, templateParams=params)).body
    statuses = []
    for _ in range(40):
        status = api.sb.message(sent["trackingId"]).status
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status == "DELIVERED":
            break
        await asyncio.sleep(0.01)
    assert statuses == ["QUEUED", "SENT", "DELIVERED"]


async def test_ttl_that_runs_out_before_delivery_ends_expired(
    make_api: MakeApi, receiver: Receiver
) -> None:
    # ttl 2 s at ttl_scale 0.01 runs out after 0.02 s; delivery would take 2 x 0.04 s.
    api = await make_api(delivery_delay=0.04, ttl_scale=0.01, moderation_delay=None)
    template = await api.approved_template()
    params = {"user_name": "A", "order_id": "1"}
    await api.send(template, templateParams=params, ttl=2, callbackUrl=receiver.url)
    (callback,) = await receiver.wait_for(1)
    assert callback["status"]["name"] == "EXPIRED"
    await api.sb.wait_idle()
    assert api.sb.messages[0].status == "EXPIRED"
    assert len(receiver.received) == 1


async def test_ttl_long_enough_is_delivered(make_api: MakeApi) -> None:
    api = await make_api(delivery_delay=0.01, ttl_scale=0.01, moderation_delay=None)
    template = await api.approved_template()
    await api.send(template, templateParams={"user_name": "A", "order_id": "1"}, ttl=10)
    await api.sb.wait_idle()
    assert api.sb.messages[0].status == "DELIVERED"


async def test_failed_share_makes_messages_fail(make_api: MakeApi, receiver: Receiver) -> None:
    api = await make_api(failed_share=1.0, moderation_delay=None)
    template = await api.approved_template()
    await api.send(
        template, templateParams={"user_name": "A", "order_id": "1"}, callbackUrl=receiver.url
    )
    callbacks = await receiver.wait_for(2)
    assert [c["status"]["name"] for c in callbacks] == ["SENT", "FAILED"]


async def test_expired_share_makes_messages_expire(make_api: MakeApi) -> None:
    api = await make_api(expired_share=1.0, moderation_delay=None)
    template = await api.approved_template()
    await api.send(template, templateParams={"user_name": "A", "order_id": "1"})
    await api.sb.wait_idle()
    assert api.sb.messages[0].status == "EXPIRED"


async def test_shares_split_the_outcomes(make_api: MakeApi) -> None:
    api = await make_api(failed_share=0.3, expired_share=0.2, seed=3, moderation_delay=None)
    template = await api.approved_template()
    for _ in range(200):
        await api.send(template, templateParams={"user_name": "A", "order_id": "1"})
    await api.sb.wait_idle()
    statuses = [m.status for m in api.sb.messages]
    assert 35 <= statuses.count("FAILED") <= 85
    assert 20 <= statuses.count("EXPIRED") <= 60
    assert statuses.count("DELIVERED") == 200 - statuses.count("FAILED") - statuses.count("EXPIRED")


async def test_callback_is_retried_when_the_receiver_fails(
    make_api: MakeApi, make_receiver: MakeReceiver
) -> None:
    api = await make_api(moderation_delay=None)
    flaky = await make_receiver(fail_first=2)
    template = await api.approved_template()
    await api.send(
        template, templateParams={"user_name": "A", "order_id": "1"}, callbackUrl=flaky.url
    )
    callbacks = await flaky.wait_for(2)
    assert {c["status"]["name"] for c in callbacks} == {"SENT", "DELIVERED"}
    await api.sb.wait_idle()
    assert flaky.attempts == 4
    assert api.sb.callbacks_sent == 2
    assert api.sb.callbacks_failed == 0
    assert sum(record.attempts for record in api.sb.callback_log) == 4
    assert all(record.ok and record.kind == "delivery" for record in api.sb.callback_log)


async def test_callback_is_given_up_after_the_attempts(
    make_api: MakeApi, make_receiver: MakeReceiver
) -> None:
    api = await make_api(moderation_delay=None, callback_attempts=2)
    down = await make_receiver(fail_first=1000)
    template = await api.approved_template()
    await api.send(
        template, templateParams={"user_name": "A", "order_id": "1"}, callbackUrl=down.url
    )
    await asyncio.sleep(0.05)
    await api.sb.wait_idle()
    assert down.attempts == 4  # two status changes, two attempts each
    assert api.sb.callbacks_failed == 2
    assert all(not r.ok and r.status == 500 and r.attempts == 2 for r in api.sb.callback_log)


async def test_callback_to_a_closed_port_is_retried_then_given_up(make_api: MakeApi) -> None:
    api = await make_api(moderation_delay=None, callback_attempts=3, callback_timeout=0.5)
    receiver = await Receiver().start()
    url = receiver.url
    await receiver.close()  # nothing listens there any more
    template = await api.approved_template()
    await api.send(template, templateParams={"user_name": "A", "order_id": "1"}, callbackUrl=url)
    await asyncio.sleep(0.05)
    await api.sb.wait_idle()
    assert api.sb.callbacks_failed == 2
    assert api.sb.callback_attempts_made == 6
    assert all(r.status is None for r in api.sb.callback_log)


async def test_no_delivery_callback_without_a_callback_url(api: Api) -> None:
    template = await api.approved_template()
    await api.send(template, templateParams={"user_name": "A", "order_id": "1"})
    await api.sb.wait_idle()
    assert api.sb.callback_attempts_made == 0
    assert api.sb.messages[0].status == "DELIVERED"


async def test_many_sends_are_all_delivered_with_callbacks(
    make_api: MakeApi, receiver: Receiver
) -> None:
    api = await make_api(moderation_delay=None, delivery_delay=0.01)
    template = await api.approved_template()
    params = {"user_name": "A", "order_id": "1"}
    replies = await asyncio.gather(
        *(api.send(template, templateParams=params, callbackUrl=receiver.url) for _ in range(300))
    )
    assert all(reply.status == 200 for reply in replies)
    await receiver.wait_for(600, within=10)
    await api.sb.wait_idle()
    assert all(m.status == "DELIVERED" for m in api.sb.messages)
    assert len({m.seq for m in api.sb.messages}) == 300
    assert api.sb.callbacks_sent == 600
