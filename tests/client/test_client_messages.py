"""``client.messages``: send and legacy send_otp bodies, ``seq`` assignment, parsed results."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from client_helpers import MESSAGES, OTP, SENDER, TO, TOKEN, all_calls, calls, json_body, only_call
from internals import send_counted
from secret_graph import assert_no_secret_reachable

from routee_viber_async import (
    DeliveryScope,
    DeliveryStatus,
    InvalidResponseError,
    Label,
    LegacyOtp,
    LegacyOtpType,
    NotFoundError,
    OtpParams,
    OtpResult,
    RetryPolicy,
    RouteeViberClient,
    SendMessage,
    SendResult,
    ServerError,
    Template,
    UnprocessableError,
    ValidationError,
    outcome_unknown,
    secret_params,
    set_secret_params,
)
from routee_viber_async._converter import from_wire

MAX_SEQ = 2**53

SEND_ANSWER: dict[str, Any] = {
    "trackingId": "304177c4-2478-4c49-bcea-3b6cede1b064",
    "deliveryScope": "ALL_DEVICES",
    "seq": 1747719911946,
    "to": TO,
    "from": "MyBrand",
    "status": {"status": "QUEUED", "date": "2026-05-20T05:45:13.606Z"},
    "price": 0.012,
    "promoCode": "X1",
}


def message(**changes: Any) -> SendMessage:
    fields: dict[str, Any] = {
        "sender_info_tracking_id": SENDER,
        "to": TO,
        "template_id": "t-1",
        "template_lang": "en",
        "template_params": {"pin": "482910"},
    }
    fields.update(changes)
    return SendMessage(**fields)


def echo_seq(answer: dict[str, Any]) -> Any:
    """An aioresponses callback answering ``answer`` with the request's own ``seq``."""

    def callback(url: object, **kwargs: Any) -> CallbackResult:
        return CallbackResult(payload={**answer, "seq": json.loads(kwargs["data"])["seq"]})

    return callback


# -- send ----------------------------------------------------------------------------------------


async def test_send_posts_exactly_the_set_fields_with_an_assigned_seq(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, callback=echo_seq(SEND_ANSWER))
    result = await client.messages.send(
        message(
            delivery_scope=DeliveryScope.ALL_DEVICES,
            ttl=300,
            callback_url="https://hooks.example.com/delivery",
        )
    )
    call = only_call(mocked, "POST", MESSAGES)
    body = json_body(call)
    seq = body.pop("seq")
    assert body == {
        "senderInfoTrackingId": SENDER,
        "to": TO,
        "templateId": "t-1",
        "templateLang": "en",
        "templateParams": {"pin": "482910"},
        "deliveryScope": "ALL_DEVICES",
        "ttl": 300,
        "callbackUrl": "https://hooks.example.com/delivery",
    }
    assert type(seq) is int
    assert 0 < seq < MAX_SEQ
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert call.kwargs["headers"]["Content-Type"] == "application/json"
    assert call.kwargs["params"] is None

    assert isinstance(result, SendResult)
    assert result.tracking_id == SEND_ANSWER["trackingId"]
    assert result.seq == seq
    assert result.delivery_scope is DeliveryScope.ALL_DEVICES
    assert result.from_ == "MyBrand"
    assert result.to == TO
    assert result.status is not None
    assert result.status.status is DeliveryStatus.QUEUED
    assert result.status.date == datetime(2026, 5, 20, 5, 45, 13, 606000, tzinfo=UTC)
    assert result.price == pytest.approx(0.012)
    assert result.extra == {"promoCode": "X1"}


async def test_every_optional_send_field_has_its_wire_name(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, payload=SEND_ANSWER)
    await client.messages.send(
        message(
            seq=77,
            delivery_scope=DeliveryScope.PRIMARY_DEVICE,
            ttl=60,
            inbound_url="https://hooks.example.com/in",
            callback_url="https://hooks.example.com/cb",
            label=Label.TRANSACTIONAL,
            multiple_singles_message_id="batch-1",
            session_message=False,
        )
    )
    body = json_body(only_call(mocked, "POST", MESSAGES))
    assert body == {
        "senderInfoTrackingId": SENDER,
        "to": TO,
        "templateId": "t-1",
        "templateLang": "en",
        "templateParams": {"pin": "482910"},
        "deliveryScope": "PRIMARY_DEVICE",
        "seq": 77,
        "ttl": 60,
        "inboundUrl": "https://hooks.example.com/in",
        "callbackUrl": "https://hooks.example.com/cb",
        "label": "transactional",
        "multipleSinglesMessageId": "batch-1",
        "sessionMessage": False,
    }


async def test_a_given_seq_is_sent_as_it_is(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, callback=echo_seq(SEND_ANSWER))
    result = await client.messages.send(message(seq=2**53 - 1))
    assert json_body(only_call(mocked, "POST", MESSAGES))["seq"] == 2**53 - 1
    assert result.seq == 2**53 - 1


async def test_sends_without_seq_get_distinct_increasing_ones(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, callback=echo_seq(SEND_ANSWER), repeat=True)
    results = [await client.messages.send(message()) for _ in range(5)]
    sent = [json_body(call)["seq"] for call in calls(mocked, "POST", MESSAGES)]
    assert sent == sorted(set(sent))
    assert [r.seq for r in results] == sent


async def test_a_retried_send_carries_the_same_seq(
    mocked: aioresponses, client: RouteeViberClient
) -> None:
    mocked.post(MESSAGES, status=503, payload={"code": "503000000"})
    mocked.post(MESSAGES, callback=echo_seq(SEND_ANSWER))
    result, attempts = await send_counted(client, message())
    bodies = [call.kwargs["data"] for call in calls(mocked, "POST", MESSAGES)]
    assert attempts == 2
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]  # byte for byte: the same seq, the same everything
    assert result.seq == json.loads(bodies[0])["seq"]


async def test_unknown_status_in_a_send_answer_is_kept(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    answer = {**SEND_ANSWER, "status": {"status": "HELD_FOR_REVIEW", "date": 1747719911946}}
    mocked.post(MESSAGES, payload=answer)
    result = await client.messages.send(message())
    assert result.status is not None
    assert result.status.status == "HELD_FOR_REVIEW"
    assert not result.status.status.is_known
    assert result.status.date == datetime(2025, 5, 20, 5, 45, 11, 946000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"to": "6912345678"}, "INVALID_RECIPIENT"),
        ({"template_params": {"name": "x" * 26}}, "PARAM_VALUE_TOO_LONG"),
        ({"template_params": {"site": "see https://example.com"}}, "PARAM_CONTAINS_URL"),
        ({"template_params": {"doc": "test.pdf"}}, "PARAM_CONTAINS_FILE_EXTENSION"),
        ({"template_lang": ""}, "TEMPLATE_LANG_REQUIRED"),
        ({"seq": 2**53}, "INVALID_FIELD"),
        ({"delivery_scope": "EVERYWHERE"}, "INVALID_DELIVERY_SCOPE"),
        ({"callback_url": "http://example.com/cb"}, "INVALID_CALLBACK_URL"),
        ({"sender_info_tracking_id": " "}, "FIELD_REQUIRED"),
    ],
)
async def test_send_refuses_bad_input_before_any_request(
    client: RouteeViberClient, mocked: aioresponses, changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(message(**changes))
    assert code in caught.value.codes
    assert caught.value.status is None
    assert all_calls(mocked) == []


async def test_send_checks_against_a_given_template(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    template = from_wire(
        {
            "templateId": "t-1",
            "category": "OTP",
            "params": [{"name": "pin", "type": "TEXT"}],
            "locales": [{"lang": "en", "template": "Code {{pin}}"}],
            "varExample": [{"name": "pin", "example": "1"}],
        },
        Template,
    )
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(
            message(template_lang="el", template_params={"code": "1"}), template=template
        )
    assert set(caught.value.codes) >= {
        "TEMPLATE_LANG_MISMATCH",
        "UNKNOWN_PARAM",
        "OTP_PIN_REQUIRED",
    }
    assert all_calls(mocked) == []


async def test_servers_400019029_is_a_validation_error_with_its_issues(
    client: RouteeViberClient, mocked: aioresponses, seed_examples: dict[str, Any]
) -> None:
    mocked.post(MESSAGES, status=400, payload=seed_examples["validation_error"])
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(message(template_params={"doc": "test.pdf"}), validate=False)
    error = caught.value
    assert error.code == "400019029"
    assert error.status == 400
    assert error.codes == ["PARAM_CONTAINS_FILE_EXTENSION"]
    assert error.developer_message == seed_examples["validation_error"]["developerMessage"]
    assert error.attempts == 1  # a 400 is never retried
    assert json_body(only_call(mocked, "POST", MESSAGES))["templateParams"] == {"doc": "test.pdf"}


@pytest.mark.parametrize(
    "answer",
    [{"payload": {"seq": 1}}, {"body": b""}, {"body": b"<html>ok</html>"}],
    ids=["no trackingId", "empty", "not JSON"],
)
async def test_an_unusable_2xx_answer_to_a_send_is_outcome_unknown(
    client: RouteeViberClient, mocked: aioresponses, answer: dict[str, Any]
) -> None:
    """17 #4: Routee answered 2xx, so the send reached it: unknown, not a certain failure."""
    mocked.post(MESSAGES, status=200, **answer)
    with pytest.raises(InvalidResponseError) as caught:
        await client.messages.send(message())
    assert outcome_unknown(caught.value)
    assert caught.value.attempts == 1


async def test_an_answer_without_tracking_id_says_what_is_missing(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, payload={"seq": 1})  # no trackingId
    with pytest.raises(InvalidResponseError) as caught:
        await client.messages.send(message())
    assert "$.trackingId: required field is missing" in str(caught.value)


async def test_an_unusable_2xx_answer_is_an_unknown_outcome_of_send_many(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, payload={"seq": 1})
    outcomes = [o async for o in client.messages.send_many([message()])]
    assert len(outcomes) == 1
    assert isinstance(outcomes[0].error, InvalidResponseError)
    assert outcomes[0].outcome_unknown
    assert outcomes[0].attempts == 1


# -- legacy OTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "wire_type"),
    [
        (DeliveryScope.PRIMARY_DEVICE, "PRIMARY_ONLY"),
        (DeliveryScope.ALL_DEVICES, "ALL_DEVICE"),
        (None, None),
    ],
)
async def test_send_otp_maps_the_delivery_scope_to_the_legacy_type(
    client: RouteeViberClient,
    mocked: aioresponses,
    seed_examples: dict[str, Any],
    scope: DeliveryScope | None,
    wire_type: str | None,
) -> None:
    mocked.post(OTP, payload=seed_examples["legacy_otp_response_all_fields"])
    await client.messages.send_otp(
        LegacyOtp(SENDER, TO, delivery_scope=scope, template_params={"pin": "847291"})
    )
    body = json_body(only_call(mocked, "POST", OTP))
    assert "deliveryScope" not in body
    assert body.get("type") == wire_type
    assert ("type" in body) == (wire_type is not None)
    assert set(body) == {"senderInfoTrackingId", "to", "templateParams", "seq"} | (
        {"type"} if wire_type else set()
    )
    assert 0 < body["seq"] < MAX_SEQ


async def test_send_otp_sends_every_seed_000_field(
    client: RouteeViberClient, mocked: aioresponses, seed_examples: dict[str, Any]
) -> None:
    mocked.post(OTP, payload=seed_examples["legacy_otp_response_all_fields"])
    await client.messages.send_otp(
        LegacyOtp(
            SENDER,
            TO,
            ttl=300,
            seq=42,
            label=Label.TRANSACTIONAL,
            delivery_scope=DeliveryScope.PRIMARY_DEVICE,
            template_id="otp-template-1",
            template_params=OtpParams(
                pin="847291",
                business_platform_name="MyApp",
                pin_type="verification",
                code_validity_time=5,
                business_platform_action_name="logging in",
                code_reason="you asked",
            ),
            template_lang="en",
        )
    )
    call = only_call(mocked, "POST", OTP)
    expected = copy.deepcopy(seed_examples["legacy_otp_request_all_fields"])
    expected["senderInfoTrackingId"] = SENDER
    assert json_body(call) == expected
    assert call.kwargs["headers"]["Content-Type"] == "application/json"


async def test_send_otp_result_has_every_seed_000_field_typed(
    client: RouteeViberClient, mocked: aioresponses, seed_examples: dict[str, Any]
) -> None:
    wire = seed_examples["legacy_otp_response_all_fields"]
    mocked.post(OTP, payload=wire)
    result = await client.messages.send_otp(
        LegacyOtp(SENDER, TO, seq=42, template_params={"pin": "847291"})
    )
    assert isinstance(result, OtpResult)
    assert result.tracking_id == wire["trackingId"]
    assert result.to == wire["to"]
    assert result.from_ == "MyBrand"
    assert result.country == "GR"
    assert result.status is not None
    assert result.status.status is DeliveryStatus.QUEUED
    assert result.status.date == datetime(2026, 5, 20, 5, 45, 13, 606000, tzinfo=UTC)
    assert result.status.reason == {"detail": "waiting"}
    assert result.application_name == "default"
    assert result.direction == "Outbound"
    assert result.ttl == 300
    assert result.seq == 42
    assert result.label is Label.TRANSACTIONAL
    assert result.otp_type is LegacyOtpType.PRIMARY_ONLY
    assert result.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert result.template_id == "otp-template-1"
    assert result.template_params == {"pin": "847291"}
    assert result.template_lang == "en"
    assert result.extra == {}
    assert "847291" not in repr(result)
    assert "847291" not in str(result)


async def test_send_otp_refuses_bad_input_before_any_request(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.messages.send_otp(
            LegacyOtp(
                SENDER,
                "+30",
                label="loud",  # type: ignore[arg-type]
                template_params={"pin": "1", "codeValidityTime": "5"},
            )
        )
    assert set(caught.value.codes) >= {"INVALID_RECIPIENT", "INVALID_LABEL", "INVALID_PARAM_TYPE"}
    assert all_calls(mocked) == []


# -- send_many ---------------------------------------------------------------------------------


async def test_send_many_sends_each_message_with_its_own_seq(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(MESSAGES, callback=echo_seq(SEND_ANSWER), repeat=True)
    invalid = message(to="bad")
    outcomes = [
        outcome
        async for outcome in client.messages.send_many(
            [message(), invalid, message(seq=5), message()], concurrency=2
        )
    ]
    assert sorted(o.index for o in outcomes) == [0, 1, 2, 3]
    by_index = {o.index: o for o in outcomes}
    assert isinstance(by_index[1].error, ValidationError)
    assert by_index[1].attempts == 0
    sent = sorted(json_body(call)["seq"] for call in calls(mocked, "POST", MESSAGES))
    assert len(sent) == 3
    ok = [by_index[i] for i in (0, 2, 3)]
    assert all(o.ok and o.attempts == 1 for o in ok)
    assert sorted(o.request.seq for o in ok) == sent
    assert all(o.result is not None and o.result.seq == o.request.seq for o in ok)
    assert by_index[2].request.seq == 5


async def test_send_many_captures_server_errors_in_the_outcome(
    mocked: aioresponses, client: RouteeViberClient
) -> None:
    view = client.with_options(retry=RetryPolicy.disabled())
    mocked.post(MESSAGES, status=500, payload={"code": "500000000"})
    [outcome] = [o async for o in view.messages.send_many([message()])]
    assert isinstance(outcome.error, ServerError)
    assert outcome.outcome_unknown
    assert outcome.attempts == 1


# -- what an error keeps of Routee's answer (issues 17 #3, 17 #13, 18) ------------------------


PIN = "482910"


async def test_a_400_quoting_the_pin_keeps_it_nowhere(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    text = f"Parameter pin value {PIN} is invalid"
    mocked.post(
        MESSAGES,
        status=400,
        payload={
            "code": "400019029",
            "developerMessage": text,
            "validationIssues": [{"code": "INVALID_VALUE", "message": text}],
        },
    )
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(message(template_params={"pin": PIN}))
    error = caught.value
    assert "Parameter pin value *** is invalid" in str(error)
    assert error.issues == [("INVALID_VALUE", "Parameter pin value *** is invalid")]
    assert PIN not in repr(error.body)
    assert_no_secret_reachable(error, [PIN, TOKEN])


async def test_a_5xx_page_echoing_the_request_keeps_no_pin(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    page = f'<html>Blocked: {{"templateParams":{{"pin":"{PIN}"}}}} Bearer {TOKEN}</html>'
    mocked.post(MESSAGES, status=503, body=page, repeat=True)
    with pytest.raises(ServerError) as caught:
        await client.with_options(retry=RetryPolicy.disabled()).messages.send(message())
    assert "Blocked" in caught.value.body
    assert_no_secret_reachable(caught.value, [PIN, TOKEN])


async def test_a_legacy_otp_400_quoting_the_pin_keeps_it_nowhere(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(OTP, status=400, payload={"code": "400", "developerMessage": f"bad pin {PIN}"})
    otp = LegacyOtp(SENDER, TO, template_params=OtpParams(pin=PIN))
    with pytest.raises(ValidationError) as caught:
        await client.messages.send_otp(otp)
    assert_no_secret_reachable(caught.value, [PIN])


async def test_every_status_error_carries_routees_code_and_message(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(
        MESSAGES,
        status=404,
        payload={"code": "404000000", "developerMessage": "Sender other was not found."},
    )
    with pytest.raises(NotFoundError) as caught:
        await client.messages.send(message())
    error = caught.value
    assert error.code == "404000000"
    assert error.developer_message == "Sender other was not found."
    assert str(error) == (
        "POST /viber/transactional/messages: HTTP 404: Sender other was not found. (404000000)"
    )


async def test_routees_message_is_scrubbed_of_the_pin(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.post(
        MESSAGES, status=422, payload={"code": "422", "developerMessage": f"pin {PIN} refused"}
    )
    with pytest.raises(UnprocessableError) as caught:
        await client.messages.send(message(template_params={"pin": PIN}))
    assert caught.value.developer_message == "pin *** refused"
    assert_no_secret_reachable(caught.value, [PIN])


@pytest.fixture
def otp_is_secret() -> Iterator[None]:
    before = secret_params()
    set_secret_params({"pin", "otp"})
    try:
        yield
    finally:
        set_secret_params(before)


@pytest.mark.usefixtures("otp_is_secret")
async def test_secret_parameter_names_are_configurable(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    code = "775533"
    sent = message(template_params={"otp": code, "name": "Al"})
    assert code not in repr(sent)
    assert "'otp': '***'" in repr(sent)
    mocked.post(MESSAGES, status=400, payload={"developerMessage": f"otp {code} is invalid"})
    with pytest.raises(ValidationError) as caught:
        await client.messages.send(sent)
    assert_no_secret_reachable(caught.value, [code])


def test_pin_is_the_default_secret_parameter() -> None:
    assert secret_params() == {"pin"}
    assert "'otp': '1'" in repr(message(template_params={"otp": "1"}))
    with pytest.raises(TypeError):
        set_secret_params("otp")
