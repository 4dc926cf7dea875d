"""The converter: renames, omissions, extras, open enums, masking and typed errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routee_viber_async import (
    DeleteConfirmation,
    DeliveryCallback,
    DeliveryStatus,
    LegacyOtp,
    ModerationCallback,
    OtpParams,
    OtpResult,
    SendMessage,
    SendResult,
    Template,
    TemplateStatus,
    TrackingRecord,
    ValidationError,
)
from routee_viber_async._converter import dumps_wire, from_wire, to_masked, to_wire

RESPONSE_MODELS = [
    SendResult,
    OtpResult,
    TrackingRecord,
    DeliveryCallback,
    ModerationCallback,
    Template,
    DeleteConfirmation,
]


def test_unset_optional_fields_are_omitted() -> None:
    wire = to_wire(SendMessage("s", "+306912345678", "t", "en"))
    assert wire == {
        "senderInfoTrackingId": "s",
        "to": "+306912345678",
        "templateId": "t",
        "templateLang": "en",
    }


def test_every_send_field_has_its_seed_name() -> None:
    message = SendMessage(
        "s",
        "+306912345678",
        "t",
        "en",
        {"a": "b"},
        delivery_scope="ALL_DEVICES",  # type: ignore[arg-type]
        seq=1,
        ttl=2,
        inbound_url="https://i",
        callback_url="https://c",
        label="transactional",  # type: ignore[arg-type]
        multiple_singles_message_id="m",
        session_message=False,
    )
    assert set(to_wire(message)) == {
        "senderInfoTrackingId",
        "to",
        "templateId",
        "templateLang",
        "templateParams",
        "deliveryScope",
        "seq",
        "ttl",
        "inboundUrl",
        "callbackUrl",
        "label",
        "multipleSinglesMessageId",
        "sessionMessage",
    }
    # falsy but set values are sent
    assert to_wire(message)["sessionMessage"] is False


def test_unknown_keys_are_kept_and_written_back() -> None:
    data = {"trackingId": "t1", "status": {"name": "DELIVERED", "vendorCode": 7}, "newThing": [1]}
    callback = from_wire(data, DeliveryCallback)
    assert callback.extra == {"newThing": [1]}
    assert callback.status.extra == {"vendorCode": 7}
    assert to_wire(callback) == data


def test_a_wire_key_named_extra_is_kept_like_any_unknown_key() -> None:
    data = {"trackingId": "t1", "extra": {"a": 1}, "more": 2}
    result = from_wire(data, SendResult)
    assert result.extra == {"extra": {"a": 1}, "more": 2}
    assert to_wire(result) == data
    # Without any other unknown key too, and where the model itself has no "extra" key.
    assert from_wire({"trackingId": "t1", "extra": None}, SendResult).extra == {"extra": None}


def test_unknown_enum_values_are_kept() -> None:
    callback = from_wire({"trackingId": "t1", "status": {"name": "READ_TWICE"}}, DeliveryCallback)
    assert callback.status.name == "READ_TWICE"
    assert not callback.status.name.is_known
    assert not callback.status.name.is_final
    assert to_wire(callback)["status"]["name"] == "READ_TWICE"
    moderation = from_wire({"templateId": "x", "templateStatus": "PAUSED"}, ModerationCallback)
    assert moderation.template_status == "PAUSED"
    assert TemplateStatus("APPROVED") is TemplateStatus.APPROVED


def test_datetimes_parse_iso_and_epoch_and_write_iso_z() -> None:
    record = from_wire({"trackingId": "t", "createdAt": "2026-05-20T05:45:13.606Z"}, TrackingRecord)
    assert record.created_at == datetime(2026, 5, 20, 5, 45, 13, 606000, tzinfo=UTC)
    assert to_wire(record)["createdAt"] == "2026-05-20T05:45:13.606Z"
    epoch_ms = from_wire({"trackingId": "t", "createdAt": 1747719911946}, TrackingRecord)
    assert epoch_ms.created_at == datetime(2025, 5, 20, 5, 45, 11, 946000, tzinfo=UTC)


def test_template_aliases() -> None:
    template = from_wire(
        {"id": "t1", "templateStatus": "APPROVED", "lifecycleCallbackUrl": "https://h"}, Template
    )
    assert template.template_id == "t1"
    assert template.status is TemplateStatus.APPROVED
    assert template.callback_url == "https://h"
    assert template.extra == {}


def test_structuring_errors_name_the_wire_field() -> None:
    with pytest.raises(ValidationError) as caught:
        from_wire(
            {"trackingId": "t", "status": {"status": 5}, "transactionalTemplate": {"seq": "x"}},
            TrackingRecord,
        )
    messages = [message for _, message in caught.value.issues]
    assert any(m.startswith("$.status.status") for m in messages)
    assert any(m.startswith("$.transactionalTemplate.seq") for m in messages)
    with pytest.raises(ValidationError, match=r"\$\.trackingId: required field is missing"):
        from_wire({"to": "+30"}, SendResult)
    with pytest.raises(ValidationError, match="expected a JSON object"):
        from_wire(["not", "an", "object"], SendResult)


def test_pin_is_masked_in_repr_str_and_masked_view_but_not_on_the_wire() -> None:
    message = SendMessage("s", "+306912345678", "t", "en", {"pin": "482910", "name": "Al"})
    otp = LegacyOtp("s", "+306912345678", template_params=OtpParams(pin="847291"))
    for obj, pin in ((message, "482910"), (otp, "847291")):
        assert pin not in repr(obj)
        assert pin not in str(obj)
        assert "***" in repr(obj)
        assert pin not in orjson.dumps(to_masked(obj)).decode()
        assert pin in dumps_wire(obj).decode()
    result = from_wire({"trackingId": "t", "templateParams": {"pin": "555111"}}, OtpResult)
    assert "555111" not in repr(result)
    assert result.template_params == {"pin": "555111"}


def test_error_from_bad_pin_type_does_not_echo_it() -> None:
    with pytest.raises(ValidationError) as caught:
        from_wire({"trackingId": "t", "seq": "pin-482910"}, OtpResult)
    assert "482910" not in str(caught.value)
    assert "482910" not in repr(caught.value.issues)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson can decode
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
WIRE_KEYS = st.sampled_from(
    [
        "trackingId", "templateId", "status", "name", "updatedDate", "date", "seq", "to", "from",
        "createdAt", "transactionalTemplate", "templateParams", "messageKind", "params", "locales",
        "varExample", "templateStatus", "variables", "price", "ttl", "deliveryScope", "id",
    ]
)  # fmt: skip
OBJECTS = st.recursive(
    st.dictionaries(WIRE_KEYS | st.text(), JSON, max_size=8),
    lambda inner: st.dictionaries(WIRE_KEYS, inner | JSON, max_size=8),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(RESPONSE_MODELS), data=OBJECTS | JSON)
def test_any_json_structures_or_raises_validation_error(model: type[Any], data: Any) -> None:
    error: ValidationError | None = None
    try:
        obj = from_wire(data, model)
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert error.issues
        return
    assert isinstance(obj, model)
    orjson.dumps(to_wire(obj))  # whatever was accepted can be written again


PINS = st.text(alphabet="0123456789", min_size=6, max_size=10).map(lambda s: "PIN" + s)
TEXT = st.text(alphabet="abcdefghij ", max_size=12)


@settings(max_examples=200, deadline=None)
@given(pin=PINS, others=st.dictionaries(TEXT, TEXT, max_size=4), extra=st.booleans())
def test_masked_converter_never_emits_a_pin(pin: str, others: dict[str, str], extra: bool) -> None:
    params = {**others, "pin": pin}
    objects: list[Any] = [
        SendMessage("s", "+306912345678", "t", "en", params),
        LegacyOtp("s", "+306912345678", template_params=params),
        LegacyOtp("s", "+306912345678", template_params=OtpParams(pin=pin)),
        from_wire(
            {"trackingId": "t", "templateParams": params, **({"x": {"pin": pin}} if extra else {})},
            OtpResult,
        ),
        from_wire(
            {"trackingId": "t", "transactionalTemplate": {"templateParams": params}},
            TrackingRecord,
        ),
    ]
    for obj in objects:
        assert pin not in orjson.dumps(to_masked(obj)).decode()
        assert pin not in repr(obj)


def test_delivery_status_members_compare_to_wire_strings() -> None:
    assert DeliveryStatus.DELIVERED == "DELIVERED"
    assert DeliveryStatus("DELIVERED").is_success


def test_a_string_is_not_taken_for_a_list() -> None:
    with pytest.raises(ValidationError, match=r"\$\.variables: expected an array"):
        from_wire(
            {"templateId": "x", "templateStatus": "APPROVED", "variables": "pin"},
            ModerationCallback,
        )
    with pytest.raises(ValidationError, match=r"\$\.params: expected an array"):
        from_wire({"templateId": "x", "params": "pin"}, Template)


def test_a_member_name_is_not_a_known_value() -> None:
    from routee_viber_async import Label
    from routee_viber_async._validation import check_label

    assert Label("promotional").is_known
    assert not Label("PROMOTIONAL").is_known  # the member's name, not its wire value
    assert check_label("PROMOTIONAL")
    assert check_label("promotional") == []


def test_an_encoded_body_holds_no_more_memory_than_its_size() -> None:
    """Queued sends each hold their body until a slot is free: a body must not keep the
    encoder's whole write buffer alive (orjson's result can)."""
    import tracemalloc

    from routee_viber_async import _json

    value = {"to": "+306912345678", "templateParams": {"pin": "123456"}, "seq": 123456789}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bodies = [_json.dumps(value) for _ in range(1000)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(bodies)
    finally:
        tracemalloc.stop()
    assert bodies[0] == b'{"to":"+306912345678","templateParams":{"pin":"123456"},"seq":123456789}'
    assert held < 4 * len(bodies[0]) + 200  # its own size and the bytes header, not kilobytes
