"""End to end: the client against the sandbox over loopback, for every endpoint.

Nothing here is mocked: the client fetches a token through the sandbox's OAuth endpoint, the
sandbox moderates templates, delivers messages and POSTs real callbacks to a receiver.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
import pytest
from integration_helpers import (
    PIN,
    TO,
    MakeClient,
    MakeSandbox,
    Receiver,
    order_template,
    otp_message,
    otp_template,
    wait_for_status,
)

from routee_viber_async import (
    DeleteConfirmation,
    DeliveryCallback,
    DeliveryScope,
    DeliveryStatus,
    Label,
    LegacyOtp,
    LegacyOtpType,
    MessageKind,
    ModerationCallback,
    NotFoundError,
    OtpParams,
    OtpResult,
    PermissionDeniedError,
    RouteeViberClient,
    SendMessage,
    SendResult,
    TemplateCategory,
    TemplateStatus,
    TrackingRecord,
    ValidationError,
)
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox
from routee_viber_async.webhooks import parse_callback

# -- templates ---------------------------------------------------------------------------------


async def test_template_lifecycle(client: RouteeViberClient, sandbox: Sandbox) -> None:
    created = await client.templates.create(sandbox.sender_id, otp_template())
    assert created.status is TemplateStatus.PENDING_MODERATION
    assert created.sender_info_tracking_id == sandbox.sender_id
    assert created.category is TemplateCategory.OTP
    assert created.service_id is not None
    assert isinstance(created.created_at, datetime)
    assert created.extra == {}

    decided = await wait_for_status(client, created.template_id)
    assert decided.status is TemplateStatus.APPROVED
    assert decided.rejection_reason is None

    fetched = await client.templates.get(created.template_id)
    assert fetched.template_id == created.template_id
    assert fetched.param_names == ["pin"]
    assert fetched.languages == ["en"]

    updated = await client.templates.update_callback(created.template_id, "https://hooks.test/m")
    assert updated.callback_url == "https://hooks.test/m"
    assert (await client.templates.get(created.template_id)).callback_url == "https://hooks.test/m"
    removed = await client.templates.update_callback(created.template_id, None)
    assert removed.callback_url is None
    assert (await client.templates.get(created.template_id)).callback_url is None

    confirmation = await client.templates.delete(created.template_id)
    assert isinstance(confirmation, DeleteConfirmation)
    assert confirmation.template_id == created.template_id
    assert confirmation.status == "DELETED"
    with pytest.raises(NotFoundError) as caught:
        await client.templates.get(created.template_id)
    assert caught.value.status == 404
    with pytest.raises(NotFoundError):
        await client.templates.delete(created.template_id)


async def test_a_template_with_a_url_is_rejected(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    created = await client.templates.create(
        sandbox.sender_id, otp_template("Code {{pin}}. More on https://example.com/help")
    )
    assert created.status is TemplateStatus.PENDING_MODERATION
    decided = await wait_for_status(client, created.template_id)
    assert decided.status is TemplateStatus.REJECTED
    assert decided.rejection_reason


async def test_list_pages_through_every_template(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox(moderation_delay=None)  # all stay PENDING_MODERATION
    client = make_client(sandbox)
    created = [
        (await client.templates.create(sandbox.sender_id, otp_template())).template_id
        for _ in range(4)
    ]
    one_by_one = [t.template_id async for t in client.templates.list(page_size=1)]
    assert one_by_one == created
    by_three = client.templates.list(sender_info_tracking_id=sandbox.sender_id, page_size=3)
    assert [t.template_id async for t in by_three] == created
    assert [t.template_id async for t in client.templates.list()] == created
    listed = [t async for t in client.templates.list(page_size=2)]
    assert all(t.status is TemplateStatus.PENDING_MODERATION for t in listed)
    assert len({t.service_id for t in listed}) == 4


async def test_list_of_an_unknown_sender_is_not_found(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    with pytest.raises(NotFoundError):
        [t async for t in client.templates.list(sender_info_tracking_id="nobody")]


# -- sends -------------------------------------------------------------------------------------


async def test_send_result_is_typed(client: RouteeViberClient, sandbox: Sandbox) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    result = await client.messages.send(
        otp_message(sandbox.sender_id, template_id, ttl=600, label=Label.TRANSACTIONAL)
    )
    assert isinstance(result, SendResult)
    stored = sandbox.message(result.tracking_id)
    assert result.seq == stored.seq
    assert result.to == TO
    assert result.from_ == "Sandbox"
    assert result.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert result.status is not None
    assert result.status.status is DeliveryStatus.QUEUED
    assert isinstance(result.status.date, datetime)
    assert result.price == pytest.approx(0.01)
    assert result.ttl == 600
    assert result.label is Label.TRANSACTIONAL
    assert result.extra == {}
    assert stored.template_id == template_id


async def test_servers_send_time_validation_is_a_validation_error(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    template_id = (await approved_template(client, sandbox, order_template())).template_id
    bad = SendMessage(
        sandbox.sender_id,
        TO,
        template_id,
        "en",
        {"user_name": "x" * 26, "order_id": "invoice.pdf", "coupon": "SAVE10"},
    )
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(bad, validate=False)
    error = caught.value
    assert error.code == "400019029"
    assert error.status == 400
    assert set(error.codes) == {
        "PARAM_VALUE_TOO_LONG",
        "PARAM_CONTAINS_FILE_EXTENSION",
        "UNKNOWN_PARAM",
    }
    assert all(message for _, message in error.issues)
    assert error.attempts == 1
    assert sandbox.messages == []


async def test_legacy_otp_answer_has_every_seed_000_field_typed(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    result = await client.messages.send_otp(
        LegacyOtp(
            sandbox.sender_id,
            TO,
            ttl=300,
            label=Label.TRANSACTIONAL,
            delivery_scope=DeliveryScope.ALL_DEVICES,
            template_params=OtpParams(pin=PIN, business_platform_name="MyApp"),
            template_lang="en",
        )
    )
    assert isinstance(result, OtpResult)
    stored = sandbox.message(result.tracking_id)
    assert stored.kind is MessageKind.OTP
    assert result.to == TO
    assert result.from_ == "Sandbox"
    assert result.country == "GR"
    assert result.status is not None
    assert result.status.status is DeliveryStatus.QUEUED
    assert isinstance(result.status.date, datetime)
    assert result.application_name == "routee-sandbox"
    assert result.direction == "Outbound"
    assert result.ttl == 300
    assert isinstance(result.seq, int)
    assert result.seq == stored.seq
    assert result.label is Label.TRANSACTIONAL
    assert result.otp_type is LegacyOtpType.ALL_DEVICE
    assert result.delivery_scope is DeliveryScope.ALL_DEVICES
    assert result.template_id == sandbox.default_otp_template_id
    assert result.template_params == {"pin": PIN, "businessPlatformName": "MyApp"}
    assert result.template_lang == "en"
    assert result.extra == {}
    assert PIN not in repr(result)


async def test_legacy_otp_with_an_approved_template(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    result = await client.messages.send_otp(
        LegacyOtp(sandbox.sender_id, TO, template_id=template_id, template_params={"pin": PIN})
    )
    assert result.template_id == template_id
    assert result.otp_type is LegacyOtpType.PRIMARY_ONLY


async def test_send_many_300_all_ok(client: RouteeViberClient, sandbox: Sandbox) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    messages = (otp_message(sandbox.sender_id, template_id) for _ in range(300))
    outcomes = [o async for o in client.messages.send_many(messages, concurrency=40)]
    assert len(outcomes) == 300
    assert sorted(o.index for o in outcomes) == list(range(300))
    assert all(o.ok and o.attempts == 1 for o in outcomes)
    assert all(o.result is not None and o.result.seq == o.request.seq for o in outcomes)
    assert len({o.request.seq for o in outcomes}) == 300
    assert len(sandbox.messages) == 300
    assert {m.seq for m in sandbox.messages} == {o.request.seq for o in outcomes}
    assert sandbox.duplicate_seq_count == 0


# -- tracking ----------------------------------------------------------------------------------


async def test_tracking_get_and_wait_until_delivered(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    sent = await client.messages.send(otp_message(sandbox.sender_id, template_id))

    first = await client.tracking.get(sent.tracking_id)
    assert isinstance(first, TrackingRecord)
    assert first.tracking_id == sent.tracking_id
    assert first.message_kind is MessageKind.TRANSACTIONAL_TEMPLATE
    assert isinstance(first.created_at, datetime)
    assert first.template_id == template_id
    block = first.transactional_template
    assert block is not None
    assert block.template_id == template_id
    assert block.template_lang == "en"
    assert block.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert block.seq == sent.seq
    assert block.template_params == {"pin": "***"}  # masked by Routee

    final = await client.tracking.wait(sent.tracking_id, timeout=3, poll_interval=0.01)
    assert final.status is not None
    assert final.status.status is DeliveryStatus.DELIVERED
    assert final.is_final
    assert sandbox.message(sent.tracking_id).status is DeliveryStatus.DELIVERED


async def test_tracking_of_an_unknown_id_is_not_found(client: RouteeViberClient) -> None:
    with pytest.raises(NotFoundError):
        await client.tracking.get("no-such-tracking-id")
    with pytest.raises(NotFoundError):
        await client.tracking.wait("no-such-tracking-id", not_found_grace=0.03, poll_interval=0.01)


# -- callbacks ---------------------------------------------------------------------------------


async def test_moderation_and_delivery_callbacks_parse(
    receiver: Receiver,
    client: RouteeViberClient,
    sandbox: Sandbox,
    seed_examples: dict[str, Any],
) -> None:
    created = await client.templates.create(
        sandbox.sender_id, otp_template(callback_url=receiver.url("moderation"))
    )
    [raw_moderation] = await receiver.wait_for("moderation", 1)
    moderation = parse_callback(raw_moderation)
    assert isinstance(moderation, ModerationCallback)
    assert moderation.template_id == created.template_id
    assert moderation.template_status is TemplateStatus.APPROVED
    assert moderation.variables == ["pin"]
    assert moderation.template_body == "Your code is {{pin}}."
    assert moderation.extra == {}

    sent = await client.messages.send(
        otp_message(sandbox.sender_id, created.template_id, callback_url=receiver.url("delivery"))
    )
    raw = await receiver.wait_for("delivery", 2)
    deliveries = [parse_callback(body) for body in raw]
    assert all(isinstance(d, DeliveryCallback) for d in deliveries)
    assert [d.status.name for d in deliveries] == [  # type: ignore[union-attr]
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
    ]
    seed = seed_examples["delivery_callback"]
    for body, delivery in zip(raw, deliveries, strict=True):
        assert isinstance(delivery, DeliveryCallback)
        payload = orjson.loads(body)
        # seed 001's shape; createdAt and templateId are in its table for callbacks too
        assert set(seed) <= set(payload) <= set(seed) | {"createdAt", "templateId"}
        assert set(payload["status"]) == {"name", "updatedDate"}
        assert set(payload["transactionalTemplate"]) == set(seed["transactionalTemplate"])
        assert "templateParams" not in payload["transactionalTemplate"]
        assert PIN.encode() not in body
        assert delivery.tracking_id == sent.tracking_id
        assert delivery.to == TO
        assert delivery.message_kind is MessageKind.TRANSACTIONAL_TEMPLATE
        assert isinstance(delivery.status.updated_date, datetime)
        block = delivery.transactional_template
        assert block is not None
        assert block.template_params is None
        assert block.seq == sent.seq
        assert block.template_id == created.template_id
        assert delivery.extra == {}


# -- permissions and tokens --------------------------------------------------------------------


async def test_a_foreign_sender_is_permission_denied(
    client: RouteeViberClient, sandbox: Sandbox
) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    with pytest.raises(PermissionDeniedError) as caught:
        await client.messages.send(otp_message(sandbox.foreign_sender_id, template_id))
    assert caught.value.status == 403
    assert caught.value.attempts == 1  # a fresh token: no refresh, no replay
    with pytest.raises(PermissionDeniedError):
        await client.templates.create(sandbox.foreign_sender_id, otp_template())
    with pytest.raises(PermissionDeniedError):
        await client.messages.send_otp(
            LegacyOtp(sandbox.foreign_sender_id, TO, template_params={"pin": PIN})
        )
    assert sandbox.tokens_issued == 1


async def test_an_unknown_sender_is_not_found(client: RouteeViberClient, sandbox: Sandbox) -> None:
    template_id = (await approved_template(client, sandbox)).template_id
    with pytest.raises(NotFoundError) as caught:
        await client.messages.send(otp_message("no-such-sender", template_id))
    assert caught.value.status == 404
    with pytest.raises(NotFoundError):
        await client.templates.create("no-such-sender", otp_template())


async def test_credentials_without_viber_scope_are_permission_denied(
    sandbox: Sandbox, make_client: MakeClient
) -> None:
    client = make_client(sandbox, credentials=sandbox.no_viber_credentials)
    with pytest.raises(PermissionDeniedError):
        await client.templates.create(sandbox.sender_id, otp_template())


async def test_a_revoked_token_is_refreshed_transparently_on_401(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox(invalid_token_status=401)
    client = make_client(sandbox)
    template_id = (await approved_template(client, sandbox)).template_id
    assert sandbox.tokens_issued == 1
    assert sandbox.revoke_tokens() == 1
    results = await asyncio.gather(
        *(client.messages.send(otp_message(sandbox.sender_id, template_id)) for _ in range(20))
    )
    assert len({r.tracking_id for r in results}) == 20
    assert sandbox.tokens_issued == 2  # one refresh for all twenty
    assert len(sandbox.messages) == 20
    assert (await client.templates.get(template_id)).is_approved


async def test_a_403_on_an_old_token_is_refreshed(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox()  # answers a revoked token with 403, as Routee does
    client = make_client(sandbox, forbidden_refresh_after=0.0)
    template_id = (await approved_template(client, sandbox)).template_id
    sandbox.revoke_tokens()
    sent = await client.messages.send(otp_message(sandbox.sender_id, template_id))
    assert sandbox.message(sent.tracking_id).seq == sent.seq
    assert sandbox.tokens_issued == 2


async def test_a_403_on_a_fresh_token_is_not_refreshed(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox()
    client = make_client(sandbox)  # forbidden_refresh_after: 60 s
    template_id = (await approved_template(client, sandbox)).template_id
    sandbox.revoke_tokens()
    with pytest.raises(PermissionDeniedError):
        await client.messages.send(otp_message(sandbox.sender_id, template_id))
    assert sandbox.tokens_issued == 1
