"""Every JSON example of the seeds round-trips through the converter with exactly its keys."""

from __future__ import annotations

from typing import Any

import pytest

from routee_viber_async import (
    CreateTemplate,
    DeliveryCallback,
    DeliveryScope,
    DeliveryStatus,
    LegacyOtp,
    LegacyOtpType,
    MessageKind,
    ModerationCallback,
    OtpResult,
    SendMessage,
    TemplateCallbackUpdate,
    TemplateCategory,
    TemplateStatus,
    TrackingRecord,
)
from routee_viber_async._converter import from_wire, to_masked, to_wire

ROUND_TRIPS = [
    ("create_template", CreateTemplate),
    ("send_non_otp", SendMessage),
    ("send_otp_category", SendMessage),
    ("delivery_callback", DeliveryCallback),
    ("legacy_otp_request_all_fields", LegacyOtp),
    ("legacy_otp_response_all_fields", OtpResult),
    ("tracking_get", TrackingRecord),
    ("moderation_callback", ModerationCallback),
    ("patch_callback", TemplateCallbackUpdate),
    ("patch_callback_remove", TemplateCallbackUpdate),
]


def _key_paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        paths = set()
        for key, inner in value.items():
            paths.add(prefix + key)
            paths |= _key_paths(inner, prefix + key + ".")
        return paths
    if isinstance(value, list):
        return set().union(*(_key_paths(v, prefix + "[].") for v in value)) if value else set()
    return set()


@pytest.mark.parametrize(("name", "model"), ROUND_TRIPS)
def test_seed_example_round_trips_with_exactly_its_keys(
    seed_examples: dict[str, Any], name: str, model: type[Any]
) -> None:
    example = seed_examples[name]
    obj = from_wire(example, model)
    wire = to_wire(obj)
    assert wire == example
    assert _key_paths(wire) == _key_paths(example)
    # nothing was parked in `extra`: every key is modelled
    assert getattr(obj, "extra", {}) == {}


def test_send_example_fields_are_typed(seed_examples: dict[str, Any]) -> None:
    message = from_wire(seed_examples["send_otp_category"], SendMessage)
    assert message.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert message.ttl == 86400
    assert message.template_params["pin"] == "482910"


def test_delivery_callback_example_is_typed(seed_examples: dict[str, Any]) -> None:
    callback = from_wire(seed_examples["delivery_callback"], DeliveryCallback)
    assert callback.status.name is DeliveryStatus.DELIVERED
    assert callback.status.updated_date is not None
    assert callback.status.updated_date.microsecond == 606000
    assert callback.message_kind is MessageKind.TRANSACTIONAL_TEMPLATE
    assert callback.transactional_template is not None
    assert callback.transactional_template.seq == 1747719911946
    assert callback.transactional_template.template_params is None
    assert callback.key == ("304177c4-2478-4c49-bcea-3b6cede1b064", "DELIVERED")


def test_create_template_example_is_typed_and_valid(seed_examples: dict[str, Any]) -> None:
    template = from_wire(seed_examples["create_template"], CreateTemplate)
    assert template.category is TemplateCategory.TRANSACTIONAL
    assert [p.name for p in template.params] == ["user_name"]
    assert template.issues() == []


def test_legacy_otp_type_maps_to_delivery_scope(seed_examples: dict[str, Any]) -> None:
    otp = from_wire(seed_examples["legacy_otp_request_all_fields"], LegacyOtp)
    assert otp.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    all_devices = LegacyOtp("s", "+306912345678", delivery_scope=DeliveryScope.ALL_DEVICES)
    assert to_wire(all_devices)["type"] == "ALL_DEVICE"
    assert "deliveryScope" not in to_wire(all_devices)
    result = from_wire(seed_examples["legacy_otp_response_all_fields"], OtpResult)
    assert result.otp_type is LegacyOtpType.PRIMARY_ONLY
    assert result.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert result.status is not None
    assert result.status.reason == {"detail": "waiting"}
    assert result.from_ == "MyBrand"


def test_tracking_example_keeps_pin_masked_and_is_final(seed_examples: dict[str, Any]) -> None:
    record = from_wire(seed_examples["tracking_get"], TrackingRecord)
    assert record.is_final
    assert record.transactional_template is not None
    assert record.transactional_template.template_params == {"pin": "***", "minutes": "5"}


def test_moderation_example_is_typed(seed_examples: dict[str, Any]) -> None:
    callback = from_wire(seed_examples["moderation_callback"], ModerationCallback)
    assert callback.template_status is TemplateStatus.REJECTED
    assert callback.variables == ["user_name"]
    assert callback.key == ("2c017482-2f44-41d6-adad-2d6af725fdbe", "REJECTED")


def test_masked_view_of_seed_examples_hides_every_pin(seed_examples: dict[str, Any]) -> None:
    for name, model in ROUND_TRIPS:
        masked = repr(to_masked(from_wire(seed_examples[name], model)))
        assert "482910" not in masked
        assert "847291" not in masked
