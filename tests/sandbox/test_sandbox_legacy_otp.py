"""Legacy ``POST /viber/otp`` (seed 000)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sandbox_helpers import DROP, OTP_TEXT, TO, Api, template_body

from routee_viber_async import _json

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

#: Seed 000's "Response (200 OK)" table.
SEED_000_FIELDS = {
    "trackingId",
    "to",
    "from",
    "country",
    "status",
    "applicationName",
    "direction",
    "ttl",
    "seq",
    "label",
    "type",
    "templateId",
    "templateParams",
    "templateLang",
}


@pytest.fixture
def routee_sandbox_options(routee_sandbox_options: dict[str, Any]) -> dict[str, Any]:
    return {**routee_sandbox_options, "moderation_delay": None}


async def test_answer_has_every_seed_000_field(api: Api) -> None:
    params = {
        "pin": "482910",
        "businessPlatformName": "MyApp",
        "pinType": "verification",
        "codeValidityTime": 5,
        "businessPlatformActionName": "logging in",
        "codeReason": "you asked",
    }
    reply = await api.send_otp(templateParams=params)
    assert reply.status == 200
    body = reply.body
    assert set(body) == SEED_000_FIELDS
    uuid.UUID(body["trackingId"])
    assert body["to"] == TO
    assert body["from"] == "Sandbox"
    assert body["country"] == "GR"
    assert body["status"]["status"] == "QUEUED"
    assert ISO_MS_Z.fullmatch(body["status"]["date"])
    assert body["applicationName"] == "routee-sandbox"
    assert body["direction"] == "Outbound"
    assert body["ttl"] == 86400
    assert isinstance(body["seq"], int)
    assert body["label"] == "transactional"
    assert body["type"] == "PRIMARY_ONLY"
    assert body["templateId"] == api.sb.default_otp_template_id
    assert body["templateParams"] == params  # seed 000 echoes the parameters used
    assert body["templateLang"] == "en"


async def test_answer_echoes_the_request(api: Api) -> None:
    reply = await api.send_otp(
        ttl=300, seq=42, label="promotional", type="ALL_DEVICE", templateLang="el"
    )
    body = reply.body
    assert (body["ttl"], body["seq"], body["label"], body["type"], body["templateLang"]) == (
        300,
        42,
        "promotional",
        "ALL_DEVICE",
        "el",
    )
    assert api.sb.messages[0].delivery_scope == "ALL_DEVICES"


async def test_pin_is_masked_everywhere_but_the_echo(api: Api) -> None:
    reply = await api.send_otp(templateParams={"pin": "918273", "businessPlatformName": "MyApp"})
    tracking_id = reply.body["trackingId"]
    tracking = await api.call("GET", f"/viber/tracking/{tracking_id}")
    assert tracking.body["messageKind"] == "otp"
    assert tracking.body["transactionalTemplate"]["templateParams"] == {
        "pin": "***",
        "businessPlatformName": "MyApp",
    }
    inspection = await api.call("GET", "/sandbox/messages", auth=False)
    assert "918273" not in _json.dumps_str(inspection.body)
    assert "918273" not in repr(api.sb.messages)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "OTP_PIN_REQUIRED"),
        ({"pin": " "}, "OTP_PIN_REQUIRED"),
        ({"pin": "1", "minutes": "5"}, "UNKNOWN_PARAM"),
        ({"pin": "1", "codeValidityTime": "5"}, "INVALID_PARAM_TYPE"),
        ({"pin": "1", "businessPlatformName": "x" * 26}, "PARAM_VALUE_TOO_LONG"),
        ({"pin": "1", "codeReason": "see bit.ly/x"}, "PARAM_CONTAINS_URL"),
    ],
)
async def test_template_params_are_validated(api: Api, params: dict[str, Any], code: str) -> None:
    reply = await api.send_otp(templateParams=params)
    assert reply.status == 400
    assert reply.body["code"] == "400019029"
    assert [issue["code"] for issue in reply.body["validationIssues"]] == [code]


async def test_template_lang_must_match(api: Api) -> None:
    reply = await api.send_otp(templateLang="fr")
    assert reply.status == 400
    assert reply.body["validationIssues"][0]["code"] == "TEMPLATE_LANG_MISMATCH"


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "ALL_DEVICES"},
        {"label": "marketing"},
        {"deliveryScope": "PRIMARY_DEVICE"},
        {"callbackUrl": "https://x.example/h"},
        {"to": "+30"},
        {"senderInfoTrackingId": DROP},
        {"templateLang": "english"},
        {"codeValidityTime": 5},
    ],
)
async def test_bad_fields_are_400(api: Api, fields: dict[str, Any]) -> None:
    reply = await api.send_otp(**fields)
    assert reply.status == 400
    assert reply.body["code"] == "400000000"


async def test_sender_rules(api: Api) -> None:
    assert (await api.send_otp(senderInfoTrackingId="nobody")).status == 404
    assert (await api.send_otp(senderInfoTrackingId=api.sb.foreign_sender_id)).status == 403


async def test_an_approved_otp_template_can_be_named(api: Api) -> None:
    template = await api.approved_template(
        template_body(OTP_TEXT + " for {{businessPlatformName}}", category="OTP")
    )
    reply = await api.send_otp(
        templateId=template["templateId"],
        templateParams={"pin": "1234", "businessPlatformName": "MyApp"},
    )
    assert reply.status == 200
    assert reply.body["templateId"] == template["templateId"]
    missing = await api.send_otp(templateId=template["templateId"], templateParams={"pin": "1"})
    assert [i["code"] for i in missing.body["validationIssues"]] == ["MISSING_PARAM"]


async def test_a_transactional_or_unknown_template_is_404(api: Api) -> None:
    template = await api.approved_template()
    assert (await api.send_otp(templateId=template["templateId"])).status == 404
    assert (await api.send_otp(templateId=str(uuid.uuid4()))).status == 404


async def test_legacy_seq_counts_for_duplicates(api: Api) -> None:
    await api.send_otp(seq=7)
    await api.send_otp(seq=7)
    assert api.sb.duplicate_seq_count == 1
