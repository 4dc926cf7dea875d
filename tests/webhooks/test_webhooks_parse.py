"""The callback parsers: seed payloads, every accepted input type, and every malformed body."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from routee_viber_async import (
    DeliveryCallback,
    DeliveryScope,
    DeliveryStatus,
    MessageKind,
    ModerationCallback,
    TemplateStatus,
    ValidationError,
)
from routee_viber_async.webhooks import (
    callback_kind,
    parse_callback,
    parse_delivery_callback,
    parse_moderation_callback,
)


def _forms(payload: dict[str, Any]) -> list[Any]:
    text = json.dumps(payload)
    return [text.encode(), text, payload, bytearray(text.encode()), memoryview(text.encode())]


def _issue_text(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(issue.message for issue in exc.value.issues)


# -- the seed's payloads ------------------------------------------------------------------------


@pytest.mark.parametrize("form", range(5), ids=["bytes", "str", "dict", "bytearray", "memoryview"])
def test_seed_delivery_callback(delivery_payload: dict[str, Any], form: int) -> None:
    callback = parse_delivery_callback(_forms(delivery_payload)[form])

    assert callback.tracking_id == "304177c4-2478-4c49-bcea-3b6cede1b064"
    assert callback.to == "+306973359331"
    assert callback.status.name is DeliveryStatus.DELIVERED
    assert callback.status.name.is_final
    assert callback.status.updated_date == datetime(2026, 5, 20, 5, 45, 13, 606000, tzinfo=UTC)
    assert callback.message_kind is MessageKind.TRANSACTIONAL_TEMPLATE
    template = callback.transactional_template
    assert template is not None
    assert template.template_id == "2c017482-2f44-41d6-adad-2d6af725fdbe"
    assert template.template_lang == "en"
    assert template.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert template.seq == 1747719911946
    assert template.template_params is None  # never in delivery callbacks
    assert callback.extra == {}
    assert callback.key == ("304177c4-2478-4c49-bcea-3b6cede1b064", "DELIVERED")


@pytest.mark.parametrize("form", range(5), ids=["bytes", "str", "dict", "bytearray", "memoryview"])
def test_moderation_callback_with_every_seed_field(
    moderation_payload: dict[str, Any], form: int
) -> None:
    callback = parse_moderation_callback(_forms(moderation_payload)[form])

    assert callback == ModerationCallback(
        template_id="2c017482-2f44-41d6-adad-2d6af725fdbe",
        template_status=TemplateStatus.REJECTED,
        template_body="Hello {{user_name}}, your appointment is confirmed.",
        variables=["user_name"],
        rejection_reason="Promotional content in a transactional template.",
    )
    assert callback.template_status.is_final
    assert callback.key == ("2c017482-2f44-41d6-adad-2d6af725fdbe", "REJECTED")


def test_moderation_callback_with_only_the_required_fields() -> None:
    callback = parse_moderation_callback(b'{"templateId": "t-1", "templateStatus": "APPROVED"}')
    assert callback.template_status is TemplateStatus.APPROVED
    assert callback.template_body is None
    assert callback.variables is None
    assert callback.rejection_reason is None


def test_parse_callback_tells_the_kinds_apart(
    delivery_payload: dict[str, Any], moderation_payload: dict[str, Any]
) -> None:
    # A delivery callback may carry a top-level templateId (portal compatibility).
    delivery_payload["templateId"] = delivery_payload["transactionalTemplate"]["templateId"]
    delivery = parse_callback(json.dumps(delivery_payload))
    moderation = parse_callback(json.dumps(moderation_payload).encode())

    assert isinstance(delivery, DeliveryCallback)
    assert delivery.template_id == "2c017482-2f44-41d6-adad-2d6af725fdbe"
    assert isinstance(moderation, ModerationCallback)
    assert callback_kind(delivery_payload) == "delivery"
    assert callback_kind(moderation_payload) == "moderation"
    assert callback_kind({"foo": 1}) is None


# -- tolerance ---------------------------------------------------------------------------------


def test_unknown_fields_are_kept(
    delivery_payload: dict[str, Any], moderation_payload: dict[str, Any]
) -> None:
    delivery_payload["eventId"] = "e-1"
    delivery_payload["status"]["reason"] = {"code": 7}
    delivery_payload["transactionalTemplate"]["vendor"] = "viber"
    moderation_payload["serviceId"] = 1001

    delivery = parse_delivery_callback(delivery_payload)
    moderation = parse_moderation_callback(moderation_payload)

    assert delivery.extra == {"eventId": "e-1"}
    assert delivery.status.extra == {"reason": {"code": 7}}
    assert delivery.transactional_template is not None
    assert delivery.transactional_template.extra == {"vendor": "viber"}
    assert moderation.extra == {"serviceId": 1001}


def test_unknown_statuses_are_tolerated(
    delivery_payload: dict[str, Any], moderation_payload: dict[str, Any]
) -> None:
    delivery_payload["status"]["name"] = "BOUNCED_BY_MARS"
    delivery_payload["messageKind"] = "carrier_pigeon"
    moderation_payload["templateStatus"] = "UNDER_APPEAL"

    delivery = parse_delivery_callback(delivery_payload)
    moderation = parse_moderation_callback(moderation_payload)

    assert delivery.status.name == "BOUNCED_BY_MARS"
    assert not delivery.status.name.is_known
    assert not delivery.status.name.is_final  # waiting goes on for an unknown status
    assert delivery.message_kind == "carrier_pigeon"
    assert moderation.template_status == "UNDER_APPEAL"
    assert not moderation.template_status.is_known
    assert delivery.key == ("304177c4-2478-4c49-bcea-3b6cede1b064", "BOUNCED_BY_MARS")


# -- malformed bodies --------------------------------------------------------------------------

PARSERS = [parse_delivery_callback, parse_moderation_callback, parse_callback]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "$: empty body"),
        (b"{", "$: malformed JSON"),
        ('{"trackingId": "a",}', "$: malformed JSON"),
        (b"\xff\xfe", "$: malformed JSON"),
        (b"[]", "$: expected a JSON object, not an array"),
        ("[{}]", "$: expected a JSON object, not an array"),
        (b'"DELIVERED"', "$: expected a JSON object, not a string"),
        (b"42", "$: expected a JSON object, not a number"),
        (b"null", "$: expected a JSON object, not null"),
        (42, "$: expected bytes, str or a mapping, not int"),
        ([{"trackingId": "a"}], "$: expected bytes, str or a mapping, not list"),
        (None, "$: expected bytes, str or a mapping, not NoneType"),
    ],
)
def test_a_body_that_is_not_a_json_object(parse: Any, body: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse(body)
    assert [issue.message for issue in exc.value.issues] == [reason]
    assert exc.value.codes == ["INVALID_FIELD"]
    assert reason in str(exc.value)


@pytest.mark.parametrize("missing", ["trackingId", "status"])
def test_delivery_callback_missing_a_required_field(
    delivery_payload: dict[str, Any], missing: str
) -> None:
    del delivery_payload[missing]
    for parse in (parse_delivery_callback, parse_callback):
        with pytest.raises(ValidationError) as exc:
            parse(json.dumps(delivery_payload))
        assert _issue_text(exc) == f"$.{missing}: required field is missing"
        assert f"$.{missing}" in str(exc.value)


def test_delivery_callback_missing_the_status_name(delivery_payload: dict[str, Any]) -> None:
    del delivery_payload["status"]["name"]
    with pytest.raises(ValidationError) as exc:
        parse_delivery_callback(delivery_payload)
    assert _issue_text(exc) == "$.status.name: required field is missing"


@pytest.mark.parametrize("missing", ["templateId", "templateStatus"])
def test_moderation_callback_missing_a_required_field(
    moderation_payload: dict[str, Any], missing: str
) -> None:
    del moderation_payload[missing]
    for parse in (parse_moderation_callback, parse_callback):
        with pytest.raises(ValidationError) as exc:
            parse(json.dumps(moderation_payload).encode())
        assert _issue_text(exc) == f"$.{missing}: required field is missing"


def test_every_missing_field_is_named() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_delivery_callback(b"{}")
    assert exc.value.issues[0].message == "$.trackingId: required field is missing"
    assert exc.value.issues[1].message == "$.status: required field is missing"
    with pytest.raises(ValidationError) as exc:
        parse_moderation_callback("{}")
    assert _issue_text(exc) == (
        "$.templateId: required field is missing | $.templateStatus: required field is missing"
    )


def test_a_body_that_is_neither_kind() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_callback({"hello": "world"})
    message = _issue_text(exc)
    for key in ("trackingId", "status", "templateId", "templateStatus"):
        assert key in message


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"status": "DELIVERED"}, "$.status"),
        ({"status": {"name": 3}}, "$.status.name"),
        ({"status": {"name": "DELIVERED", "updatedDate": "yesterday"}}, "$.status.updatedDate"),
        ({"trackingId": True}, "$.trackingId"),
        ({"trackingId": {"id": 1}}, "$.trackingId"),
        ({"trackingId": ""}, "$.trackingId"),
        ({"transactionalTemplate": []}, "$.transactionalTemplate"),
        ({"transactionalTemplate": {"seq": "soon"}}, "$.transactionalTemplate.seq"),
        ({"messageKind": 5}, "$.messageKind"),
    ],
)
def test_delivery_callback_field_of_the_wrong_type(
    delivery_payload: dict[str, Any], patch: dict[str, Any], field: str
) -> None:
    delivery_payload.update(patch)
    with pytest.raises(ValidationError) as exc:
        parse_delivery_callback(json.dumps(delivery_payload))
    assert _issue_text(exc).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"templateStatus": ["APPROVED"]}, "$.templateStatus"),
        ({"templateId": None}, "$.templateId"),
        ({"templateId": "  "}, "$.templateId"),
        ({"variables": "user_name"}, "$.variables"),
        ({"variables": ["a", {"b": 1}]}, "$.variables[1]"),
        ({"rejectionReason": {"text": "no"}}, "$.rejectionReason"),
    ],
)
def test_moderation_callback_field_of_the_wrong_type(
    moderation_payload: dict[str, Any], patch: dict[str, Any], field: str
) -> None:
    moderation_payload.update(patch)
    with pytest.raises(ValidationError) as exc:
        parse_moderation_callback(moderation_payload)
    assert _issue_text(exc).startswith(f"{field}: ")


def test_errors_never_echo_the_body(delivery_payload: dict[str, Any]) -> None:
    secret = "pin-482910"
    bodies: list[Any] = [
        {**delivery_payload, "status": {"name": "SENT", "updatedDate": secret}},
        {**delivery_payload, "status": secret},
        {**delivery_payload, "transactionalTemplate": {"seq": secret}},
        {"pin": secret},
        f'{{"trackingId": "{secret}", ',
        f'["{secret}"]',
    ]
    for body in bodies:
        for parse in PARSERS:
            with pytest.raises(ValidationError) as exc:
                parse(body)
            for text in (str(exc.value), repr(exc.value.issues), exc.value.developer_message):
                assert "482910" not in (text or "")


def test_a_parsed_callback_is_not_tied_to_the_input(delivery_payload: dict[str, Any]) -> None:
    callback = parse_delivery_callback(delivery_payload)
    delivery_payload["trackingId"] = "changed"
    assert callback.tracking_id == "304177c4-2478-4c49-bcea-3b6cede1b064"
