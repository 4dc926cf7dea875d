"""Local validation: every rule with values it accepts and values it rejects."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import orjson
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
from routee_viber_async._converter import dumps_wire
from routee_viber_async._validation import check_param_value, check_recipient, is_loopback_host

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


# -- values the wire cannot carry (issue 17 #13) --------------------------------------------


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({1: "x", "pin": "482910"}, "templateParams"),
        ({None: "x", "pin": "482910"}, "templateParams"),
        ({("a",): "x", "pin": "482910"}, "templateParams"),
        ({"pin": 2**64}, "pin"),
        ({"pin": 2**70}, "pin"),
        ({"pin": -(2**63) - 1}, "pin"),
        ({"pin": math.nan}, "pin"),
        ({"pin": math.inf}, "pin"),
        ({"pin": -math.inf}, "pin"),
        ({"pin": "48\ud8002910"}, "pin"),  # a lone surrogate: no JSON encoder can send it
    ],
    ids=repr,
)
@pytest.mark.parametrize("with_template", [False, True])
def test_values_the_wire_cannot_carry_are_refused(
    params: dict[Any, Any], names: str, with_template: bool
) -> None:
    template = Template(
        template_id="t-1",
        category=TemplateCategory.OTP,
        params=[TemplateParam("pin")],
        locales=[TemplateLocale("en", "Code {{pin}}")],
    )
    message = send(template_params=params)
    with pytest.raises(ValidationError, match=names) as caught:
        message.validate(template if with_template else None)
    assert caught.value.codes == ["INVALID_PARAM_TYPE"]


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, 1.5, -2.25, 1e300])
def test_numbers_within_the_wire_s_range_are_accepted(value: float) -> None:
    message = send(template_params={"pin": value})
    message.validate()
    assert orjson.loads(dumps_wire(message))["templateParams"] == {"pin": value}


def test_ttl_and_code_validity_time_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ValidationError, match="ttl must be an integer within 64 bits"):
        send(ttl=2**64).validate()
    send(ttl=2**63 - 1).validate()
    for params in ({"codeValidityTime": 2**64}, OtpParams(pin="1", code_validity_time=2**70)):
        otp = LegacyOtp(SENDER, NUMBER, template_params=params)
        with pytest.raises(ValidationError, match="codeValidityTime"):
            otp.validate()
    with pytest.raises(ValidationError, match="ttl"):
        LegacyOtp(SENDER, NUMBER, ttl=2**64).validate()


def test_legacy_otp_parameter_names_must_be_strings() -> None:
    otp = LegacyOtp(SENDER, NUMBER, template_params={"pin": "1", 5: "x"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="templateParams names must be strings"):
        otp.validate()


# -- text checked as a reader sees it (issue 17 #13) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("evil\uff0ecom", "PARAM_CONTAINS_URL"),  # a full-width dot
        ("evil\u2024com", "PARAM_CONTAINS_URL"),  # one dot leader
        ("\uff45\uff56\uff49\uff4c.com", "PARAM_CONTAINS_URL"),  # full-width letters
        ("https\uff1a//x.io", "PARAM_CONTAINS_URL"),  # a full-width colon
        ("ev\u200bil.com", "PARAM_CONTAINS_URL"),  # a zero-width space in the domain
        ("www\u200d.x.gr", "PARAM_CONTAINS_URL"),
        ("test\u200d.pdf", "PARAM_CONTAINS_FILE_EXTENSION"),  # a zero-width joiner
        ("test.\u2060pdf", "PARAM_CONTAINS_FILE_EXTENSION"),  # a word joiner
        ("test\ufeff.pdf", "PARAM_CONTAINS_FILE_EXTENSION"),  # a BOM
        ("test\uff0epdf", "PARAM_CONTAINS_FILE_EXTENSION"),
        ("test.\uff50\uff44\uff46", "PARAM_CONTAINS_FILE_EXTENSION"),
    ],
)
def test_url_and_file_name_checks_see_through_lookalikes(value: str, code: str) -> None:
    assert codes(check_param_value("p", value)) == [code]


@pytest.mark.parametrize("blank", ["\u200b" * 25, "\u200b \u200d", "\ufeff", "\u2060\u00ad"])
def test_invisible_text_is_blank(blank: str) -> None:
    params = {"pin": "482910", "minutes": blank}
    assert codes(send(template_params=params).issues(OTP_TEMPLATE)) == ["MISSING_PARAM"]
    otp_without_params = Template(
        template_id="t-2",
        category=TemplateCategory.OTP,
        params=[],
        locales=[TemplateLocale("en", "static")],
    )
    pin_only = send(template_params={"pin": blank})
    assert "OTP_PIN_REQUIRED" in codes(pin_only.issues(otp_without_params))
    assert codes(send(sender_info_tracking_id=blank).issues()) == ["FIELD_REQUIRED"]
    assert codes(send(template_id=blank).issues()) == ["FIELD_REQUIRED"]
    assert codes(send(template_lang=blank).issues()) == ["TEMPLATE_LANG_REQUIRED"]
    assert "FIELD_REQUIRED" in codes(template_def(locales=[TemplateLocale("en", blank)]).issues())


def test_the_wire_carries_the_value_as_given() -> None:
    """Normalisation serves the checks only: an accepted value is sent unchanged."""
    value = "\uff21\uff22 caf\u0065\u0301"  # full-width "AB", a decomposed é
    message = send(template_params={"pin": value})
    message.validate()
    assert orjson.loads(dumps_wire(message))["templateParams"] == {"pin": value}


# -- lengths in UTF-16 code units (issue 17 #13) --------------------------------------------


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("\U0001f600" * 12 + "x", True),  # 25 units
        ("\U0001f600" * 13, False),  # 13 characters, 26 units
        ("a" * 24 + "\U0001f600", False),  # 25 characters, 26 units
        ("\U00010348" * 12 + "€", True),  # a Gothic letter: two units each
        ("a" * 24 + "\u200b", True),  # a zero-width space counts: it is sent
        ("a" * 25 + "\u200b", False),
    ],
)
def test_length_counts_utf16_code_units(value: str, accepted: bool) -> None:
    issues = check_param_value("p", value)
    assert codes(issues) == ([] if accepted else ["PARAM_VALUE_TOO_LONG"])


# -- loopback hosts are parsed (issue 17 #13) -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.evil.com/cb",
        "http://127.0.0.1.evil.com/cb",
        "http://127.0.0.1.nip.io/cb",
        "http://localhost.evil.com/cb",
        "http://[::2]/cb",
        "http://128.0.0.1/cb",
        "http://0.0.0.0/cb",
    ],
)
def test_http_callback_to_a_name_that_only_looks_like_loopback_is_refused(url: str) -> None:
    assert codes(send(callback_url=url).issues()) == ["INVALID_CALLBACK_URL"]
    assert not is_loopback_host(urlsplit(url).hostname)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://127.255.3.4:9000/cb",
        "http://[::1]:8080/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://LOCALHOST/cb",
        "http://hooks.localhost/cb",
    ],
)
def test_http_callback_to_loopback_is_accepted(url: str) -> None:
    assert send(callback_url=url).issues() == []
