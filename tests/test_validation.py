"""Local validation: every rule with values it accepts and values it rejects."""

from __future__ import annotations

import pytest

from routee_viber_async import (
    CreateTemplate,
    DeliveryScope,
    Label,
    LegacyOtp,
    OtpParams,
    SendMessage,
    Template,
    TemplateCallbackUpdate,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    TemplateStatus,
    ValidationError,
    VarExample,
)
from routee_viber_async._validation import check_param_value, check_recipient

SENDER = "sender-1"
NUMBER = "+306912345678"


def codes(issues: list[tuple[str, str]]) -> list[str]:
    return [code for code, _ in issues]


@pytest.mark.parametrize(
    "number",
    ["+306912345678", "+2901234", "+12025550123", "+442071838750", "+123456789012345"],
)
def test_e164_accepts(number: str) -> None:
    assert check_recipient(number) == []


@pytest.mark.parametrize(
    "number",
    [
        "306912345678",  # no +
        "+0306912345",  # country code starting with 0
        "+290123",  # 6 digits
        "+1234567890123456",  # 16 digits
        "+30 6912345678",  # space
        "+30-691-234-5678",  # dashes
        "+30691234567a",
        "+306912345678\n",
        "",
    ],
)
def test_e164_rejects(number: str) -> None:
    assert codes(check_recipient(number)) in (["INVALID_RECIPIENT"], ["FIELD_REQUIRED"])


@pytest.mark.parametrize(
    "value",
    [
        "4.50",
        "Mr. Smith",
        "e.g.",
        "v2",
        "Thanks for your order.",
        "482910",
        "John.Smith",
        "U.S.A.",
        "St. John",
        "x" * 25,
        "€" * 25,  # 25 characters, 75 bytes: characters count, not bytes
        "Ωμέγα",
        "No. 5",
        "order #4829",
        "3.14159",
    ],
)
def test_param_value_accepts(value: str) -> None:
    assert check_param_value("p", value) == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("x" * 26, "PARAM_VALUE_TOO_LONG"),
        ("€" * 26, "PARAM_VALUE_TOO_LONG"),
        ("https://x.io", "PARAM_CONTAINS_URL"),
        ("http://localhost", "PARAM_CONTAINS_URL"),
        ("www.google", "PARAM_CONTAINS_URL"),
        ("evil.com/x", "PARAM_CONTAINS_URL"),
        ("evil.com", "PARAM_CONTAINS_URL"),
        ("pay.example.org", "PARAM_CONTAINS_URL"),
        ("visit SHOP.GR now", "PARAM_CONTAINS_URL"),
        ("mailto:me", "PARAM_CONTAINS_URL"),
        ("test.pdf", "PARAM_CONTAINS_FILE_EXTENSION"),
        ("report.DOCX", "PARAM_CONTAINS_FILE_EXTENSION"),
        ("invoice_2026.xlsx", "PARAM_CONTAINS_FILE_EXTENSION"),
        ("backup.tar.gz", "PARAM_CONTAINS_FILE_EXTENSION"),
        ("setup.exe here", "PARAM_CONTAINS_FILE_EXTENSION"),
    ],
)
def test_param_value_rejects(value: str, code: str) -> None:
    assert codes(check_param_value("p", value)) == [code]


def test_param_messages_never_carry_the_value() -> None:
    for value in ("https://secret-482910.com", "x" * 40 + "482910", "secret482910.pdf"):
        for _, message in check_param_value("pin", value):
            assert "482910" not in message
            assert "pin" in message


def test_param_value_of_wrong_type_is_rejected() -> None:
    assert codes(check_param_value("p", ["a"])) == ["INVALID_PARAM_TYPE"]
    assert codes(check_param_value("p", True)) == ["INVALID_PARAM_TYPE"]


def send(**changes: object) -> SendMessage:
    fields: dict[str, object] = {
        "sender_info_tracking_id": SENDER,
        "to": NUMBER,
        "template_id": "t-1",
        "template_lang": "en",
        "template_params": {"pin": "482910"},
    }
    fields.update(changes)
    return SendMessage(**fields)  # type: ignore[arg-type]


OTP_TEMPLATE = Template(
    template_id="t-1",
    category=TemplateCategory.OTP,
    status=TemplateStatus.APPROVED,
    params=[TemplateParam("pin"), TemplateParam("minutes")],
    locales=[TemplateLocale("en", "Code {{pin}}, valid {{minutes}} min")],
)


def test_valid_send_passes_without_and_with_template() -> None:
    send().validate()
    send(template_params={"pin": "482910", "minutes": "5"}).validate(OTP_TEMPLATE)


def test_send_collects_every_issue() -> None:
    message = send(
        to="12345",
        template_lang="",
        template_params={"pin": "x" * 30, "link": "evil.com/x"},
        delivery_scope="EVERYWHERE",
        callback_url="http://hooks.example.com/cb",
    )
    with pytest.raises(ValidationError) as caught:
        message.validate()
    assert sorted(caught.value.codes) == sorted(
        [
            "INVALID_RECIPIENT",
            "INVALID_DELIVERY_SCOPE",
            "TEMPLATE_LANG_REQUIRED",
            "PARAM_VALUE_TOO_LONG",
            "PARAM_CONTAINS_URL",
            "INVALID_CALLBACK_URL",
        ]
    )
    assert "x" * 30 not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"template_params": {"pin": "1"}}, "MISSING_PARAM"),
        ({"template_params": {"pin": "1", "minutes": "  "}}, "MISSING_PARAM"),
        ({"template_params": {"pin": "1", "minutes": "5", "extra": "x"}}, "UNKNOWN_PARAM"),
        (
            {"template_params": {"pin": "1", "minutes": "5"}, "template_lang": "el"},
            "TEMPLATE_LANG_MISMATCH",
        ),
    ],
)
def test_template_aware_send_checks(changes: dict[str, object], code: str) -> None:
    assert codes(send(**changes).issues(OTP_TEMPLATE)) == [code]


def test_otp_pin_required_with_template() -> None:
    template = Template(
        template_id="t-2",
        category=TemplateCategory.OTP,
        params=[],
        locales=[TemplateLocale("en", "static")],
    )
    assert codes(send(template_params={}).issues(template)) == ["OTP_PIN_REQUIRED"]


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/cb", "http://127.0.0.1:8080/cb", "http://localhost/cb"]
)
def test_callback_url_accepts(url: str) -> None:
    assert send(callback_url=url).issues() == []
    assert TemplateCallbackUpdate(url).issues() == []


@pytest.mark.parametrize(
    "url", ["http://hooks.example.com/cb", "ftp://x.com/a", "hooks.example.com/cb", "https://"]
)
def test_callback_url_rejects(url: str) -> None:
    assert codes(send(callback_url=url).issues()) == ["INVALID_CALLBACK_URL"]


def test_seq_and_ttl_bounds() -> None:
    assert codes(send(seq=2**53).issues()) == ["INVALID_FIELD"]
    assert codes(send(seq=-1).issues()) == ["INVALID_FIELD"]
    assert codes(send(ttl=0).issues()) == ["INVALID_FIELD"]
    assert send(seq=2**53 - 1, ttl=60).issues() == []


def test_legacy_otp_rules() -> None:
    good = LegacyOtp(
        SENDER,
        NUMBER,
        label=Label.TRANSACTIONAL,
        delivery_scope=DeliveryScope.ALL_DEVICES,
        template_params=OtpParams(pin="847291", code_validity_time=5),
        template_lang="en",
    )
    good.validate()
    bad = LegacyOtp(
        SENDER,
        NUMBER,
        label="marketing",  # type: ignore[arg-type]
        template_params={"pin": "847291", "codeValidityTime": "five"},
        template_lang="english",
    )
    assert sorted(codes(bad.issues())) == ["INVALID_LABEL", "INVALID_LANG", "INVALID_PARAM_TYPE"]


def template_def(**changes: object) -> CreateTemplate:
    fields: dict[str, object] = {
        "category": TemplateCategory.OTP,
        "params": [TemplateParam("pin")],
        "locales": [TemplateLocale("en", "Your code is {{pin}}"), TemplateLocale("el", "{{pin}}")],
        "var_example": [VarExample("pin", "123456")],
    }
    fields.update(changes)
    return CreateTemplate(**fields)  # type: ignore[arg-type]


def test_template_definition_accepts() -> None:
    template_def().validate()
    template_def(
        category=TemplateCategory.TRANSACTIONAL,
        params=[],
        locales=[TemplateLocale("en", "static text")],
        var_example=[],
        callback_url="https://hooks.example.com/m",
        moderation_notify_email="ops@example.com",
    ).validate()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"locales": [TemplateLocale("en", "Your code is ready")]}, "OTP_PIN_PLACEHOLDER_REQUIRED"),
        (
            {"locales": [TemplateLocale("en", "{{pin}}"), TemplateLocale("el", "χωρίς")]},
            "OTP_PIN_PLACEHOLDER_REQUIRED",
        ),
        ({"locales": [TemplateLocale("en", "{{pin}} {{name}}")]}, "UNDECLARED_PLACEHOLDER"),
        (
            {
                "params": [TemplateParam("pin"), TemplateParam("x")],
                "var_example": [VarExample("pin", "1"), VarExample("x", "y")],
            },
            "UNUSED_PARAM",
        ),
        ({"var_example": []}, "VAR_EXAMPLE_MISMATCH"),
        ({"var_example": [VarExample("pin", "1"), VarExample("pin", "2")]}, "VAR_EXAMPLE_MISMATCH"),
        ({"locales": []}, "LOCALE_REQUIRED"),
        (
            {"locales": [TemplateLocale("en", "{{pin}}"), TemplateLocale("en", "{{pin}}!")]},
            "DUPLICATE_LOCALE",
        ),
        ({"locales": [TemplateLocale("english", "{{pin}}")]}, "INVALID_LANG"),
        ({"locales": [TemplateLocale("xx", "{{pin}}")]}, "INVALID_LANG"),
        ({"params": [TemplateParam("pin", "NUMBER")]}, "INVALID_PARAM_TYPE"),
        ({"category": "Marketing"}, "INVALID_CATEGORY"),
        ({"callback_url": "http://example.com/x"}, "INVALID_CALLBACK_URL"),
        ({"moderation_notify_email": "nobody"}, "INVALID_FIELD"),
    ],
)
def test_template_definition_rejects(changes: dict[str, object], code: str) -> None:
    assert code in codes(template_def(**changes).issues())


def test_validation_error_is_a_value_error_with_issues() -> None:
    with pytest.raises(ValueError, match="INVALID_RECIPIENT") as caught:
        send(to="nope").validate()
    assert isinstance(caught.value, ValidationError)
    assert caught.value.issues[0].code == "INVALID_RECIPIENT"
    code, message = caught.value.issues[0]
    assert code == "INVALID_RECIPIENT"
    assert "E.164" in message
