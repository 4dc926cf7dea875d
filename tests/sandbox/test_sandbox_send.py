"""``POST /viber/transactional/messages``: request rules, send-time validation, the answer."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from sandbox_helpers import DROP, OTP_TEXT, TO, Api, MakeApi, template_body

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PARAMS = {"user_name": "Alex", "order_id": "4829"}


@pytest.fixture
def routee_sandbox_options(routee_sandbox_options: dict[str, Any]) -> dict[str, Any]:
    """Manual moderation: the tests approve what they send with."""
    return {**routee_sandbox_options, "moderation_delay": None}


@pytest.fixture
async def template(api: Api) -> dict[str, Any]:
    return await api.approved_template()


@pytest.fixture
async def otp_template(api: Api) -> dict[str, Any]:
    return await api.approved_template(template_body(OTP_TEXT + " {{minutes}} min", category="OTP"))


async def test_send_answers_the_accepted_message(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(template, templateParams=PARAMS)
    assert reply.status == 200
    body = reply.body
    assert set(body) == {"trackingId", "deliveryScope", "seq", "to", "from", "status", "price"}
    uuid.UUID(body["trackingId"])
    assert body["deliveryScope"] == "PRIMARY_DEVICE"
    assert body["to"] == TO
    assert body["from"] == "Sandbox"
    assert body["status"]["status"] == "QUEUED"
    assert ISO_MS_Z.fullmatch(body["status"]["date"])
    assert isinstance(body["price"], float)
    (message,) = api.sb.messages
    assert message.tracking_id == body["trackingId"]
    assert message.kind == "transactional_template"


async def test_send_echoes_the_optional_fields_given(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(
        template,
        templateParams=PARAMS,
        deliveryScope="ALL_DEVICES",
        label="orders",
        sessionMessage=True,
        callbackUrl="https://hooks.example.com/dlr",
        ttl=600,
        inboundUrl="https://hooks.example.com/in",
        multipleSinglesMessageId="batch-1",
    )
    assert reply.status == 200
    body = reply.body
    assert body["deliveryScope"] == "ALL_DEVICES"
    assert body["label"] == "orders"
    assert body["sessionMessage"] is True
    assert body["callbackUrl"] == "https://hooks.example.com/dlr"
    assert body["ttl"] == 600


async def test_seq_is_assigned_when_missing(api: Api, template: dict[str, Any]) -> None:
    before = int(time.time() * 1000)
    first = (await api.send(template, templateParams=PARAMS)).body["seq"]
    second = (await api.send(template, templateParams=PARAMS)).body["seq"]
    assert isinstance(first, int)
    assert before <= first <= int(time.time() * 1000) + 5
    assert second > first
    assert api.sb.duplicate_seq_count == 0


async def test_seq_is_echoed_when_given(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(template, templateParams=PARAMS, seq=1747719911946)
    assert reply.body["seq"] == 1747719911946
    assert api.sb.messages[0].seq == 1747719911946


async def test_duplicate_seq_is_counted(api: Api, template: dict[str, Any]) -> None:
    for seq in (11, 12, 11, 11):
        assert (await api.send(template, templateParams=PARAMS, seq=seq)).status == 200
    assert api.sb.duplicate_seq_count == 2
    assert len(api.sb.messages) == 4


@pytest.mark.parametrize("field", ["transactionalSendTypeCode", "message", "body"])
async def test_unknown_top_level_field_is_400(
    api: Api, template: dict[str, Any], field: str
) -> None:
    reply = await api.send(template, templateParams=PARAMS, **{field: 1})
    assert reply.status == 400
    assert reply.body["code"] == "400000000"
    assert field in reply.body["developerMessage"]
    assert "validationIssues" not in reply.body
    assert api.sb.messages == []


@pytest.mark.parametrize("scope", ["ALL_DEVICE", "primary_device", 1])
async def test_bad_delivery_scope_is_400(api: Api, template: dict[str, Any], scope: Any) -> None:
    reply = await api.send(template, templateParams=PARAMS, deliveryScope=scope)
    assert reply.status == 400
    assert reply.body["code"] == "400000000"


@pytest.mark.parametrize(
    "fields",
    [
        {"senderInfoTrackingId": DROP},
        {"to": DROP},
        {"templateId": DROP},
        {"to": "306912345678"},
        {"to": "+0123"},
        {"seq": -1},
        {"seq": "12"},
        {"ttl": 0},
        {"templateParams": ["user_name"]},
        {"callbackUrl": "http://hooks.example.com/x"},
        {"sessionMessage": "yes"},
    ],
)
async def test_bad_fields_are_400(api: Api, template: dict[str, Any], fields: Any) -> None:
    reply = await api.send(template, **{"templateParams": PARAMS, **fields})
    assert reply.status == 400
    assert reply.body["code"] == "400000000"
    assert api.sb.messages == []


async def test_unknown_sender_is_404(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(template, templateParams=PARAMS, senderInfoTrackingId="nobody")
    assert reply.status == 404


async def test_foreign_sender_is_403(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(
        template, templateParams=PARAMS, senderInfoTrackingId=api.sb.foreign_sender_id
    )
    assert reply.status == 403


async def test_unknown_template_is_404(api: Api) -> None:
    reply = await api.send(templateId=str(uuid.uuid4()), templateLang="en")
    assert reply.status == 404
    assert reply.body["code"] == "404000000"


async def test_pending_template_is_404(api: Api) -> None:
    pending = (await api.create_template()).body
    reply = await api.send(pending, templateParams=PARAMS)
    assert reply.status == 404


async def test_rejected_template_is_404(api: Api) -> None:
    rejected = (await api.create_template()).body
    api.sb.reject(rejected["templateId"])
    assert (await api.send(rejected, templateParams=PARAMS)).status == 404


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"templateLang": DROP}, "TEMPLATE_LANG_REQUIRED"),
        ({"templateLang": "el"}, "TEMPLATE_LANG_MISMATCH"),
        ({"templateParams": {"user_name": "Alex"}}, "MISSING_PARAM"),
        ({"templateParams": {**PARAMS, "order_id": "  "}}, "MISSING_PARAM"),
        ({"templateParams": {**PARAMS, "extra": "x"}}, "UNKNOWN_PARAM"),
        ({"templateParams": {**PARAMS, "user_name": "x" * 26}}, "PARAM_VALUE_TOO_LONG"),
        ({"templateParams": {**PARAMS, "user_name": "see https://x.io"}}, "PARAM_CONTAINS_URL"),
        ({"templateParams": {**PARAMS, "user_name": "www.evil"}}, "PARAM_CONTAINS_URL"),
        (
            {"templateParams": {**PARAMS, "order_id": "test.pdf"}},
            "PARAM_CONTAINS_FILE_EXTENSION",
        ),
    ],
)
async def test_send_time_validation(
    api: Api, template: dict[str, Any], fields: dict[str, Any], code: str
) -> None:
    reply = await api.send(template, **{"templateParams": PARAMS, **fields})
    assert reply.status == 400
    assert reply.body["code"] == "400019029"
    issues = reply.body["validationIssues"]
    assert [issue["code"] for issue in issues] == [code]
    assert reply.body["developerMessage"] == issues[0]["message"]
    assert set(issues[0]) == {"code", "message"}
    assert api.sb.messages == []


async def test_file_extension_message_is_the_seeds(api: Api) -> None:
    body = template_body("Your {{document_name}} is ready.")
    template = await api.approved_template(body)
    reply = await api.send(template, templateParams={"document_name": "test.pdf"})
    assert reply.body == {
        "code": "400019029",
        "developerMessage": "Parameter document_name must not look like a file name or "
        "extension (e.g. test.pdf).",
        "validationIssues": [
            {
                "code": "PARAM_CONTAINS_FILE_EXTENSION",
                "message": "Parameter document_name must not look like a file name or "
                "extension (e.g. test.pdf).",
            }
        ],
    }


async def test_otp_template_send_needs_pin(api: Api, otp_template: dict[str, Any]) -> None:
    reply = await api.send(otp_template, templateParams={"minutes": "5"})
    assert reply.status == 400
    codes = [issue["code"] for issue in reply.body["validationIssues"]]
    assert codes == ["MISSING_PARAM", "OTP_PIN_REQUIRED"]
    ok = await api.send(otp_template, templateParams={"pin": "482910", "minutes": "5"})
    assert ok.status == 200


async def test_every_issue_is_collected(api: Api, template: dict[str, Any]) -> None:
    reply = await api.send(
        template,
        templateLang="el",
        templateParams={"user_name": "y" * 30, "coupon": "a.zip"},
    )
    assert reply.status == 400
    codes = [issue["code"] for issue in reply.body["validationIssues"]]
    assert sorted(codes) == sorted(
        [
            "TEMPLATE_LANG_MISMATCH",
            "PARAM_VALUE_TOO_LONG",
            "PARAM_CONTAINS_FILE_EXTENSION",
            "MISSING_PARAM",
            "UNKNOWN_PARAM",
        ]
    )
    assert reply.body["developerMessage"].count(";") == 4


async def test_template_without_params_accepts_no_params(api: Api) -> None:
    template = await api.approved_template(template_body("Your order shipped.", params=[]))
    assert (await api.send(template)).status == 200
    assert (await api.send(template, templateParams={})).status == 200


async def test_non_json_send_is_400(api: Api) -> None:
    token = await api.token()
    async with api.http.post(
        api.sb.base_url + "/viber/transactional/messages",
        data="to=+30",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ) as response:
        assert response.status == 400


async def test_price_is_configurable(make_api: MakeApi) -> None:
    api = await make_api(price=0.5, moderation_delay=None)
    template = await api.approved_template()
    assert (await api.send(template, templateParams=PARAMS)).body["price"] == 0.5
