"""Template endpoints: create rules, list cursors, get, PATCH (webhook only), delete."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sandbox_helpers import OTP_TEXT, Api, template_body

TEMPLATES = "/viber/transactional/templates"
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def routee_sandbox_options(routee_sandbox_options: dict[str, Any]) -> dict[str, Any]:
    """Templates stay PENDING_MODERATION here (moderation is tested on its own)."""
    return {**routee_sandbox_options, "moderation_delay": None}


async def test_create_returns_the_template_object(api: Api) -> None:
    reply = await api.create_template()
    assert reply.status == 200
    body = reply.body
    assert set(body) == {
        "templateId",
        "serviceId",
        "senderInfoTrackingId",
        "category",
        "status",
        "params",
        "locales",
        "varExample",
        "createdAt",
        "updatedAt",
    }  # absent optionals (callbackUrl, moderationNotifyEmail, rejectionReason) are omitted
    uuid.UUID(body["templateId"])
    assert isinstance(body["serviceId"], int)
    assert body["senderInfoTrackingId"] == api.sb.sender_id
    assert body["category"] == "Transactional"
    assert body["status"] == "PENDING_MODERATION"
    assert body["params"] == [
        {"name": "user_name", "type": "TEXT"},
        {"name": "order_id", "type": "TEXT"},
    ]
    assert body["locales"] == [
        {"lang": "en", "template": "Hello {{user_name}}, order {{order_id}} is ready."}
    ]
    assert body["varExample"] == [
        {"name": "user_name", "example": "x"},
        {"name": "order_id", "example": "x"},
    ]
    assert ISO_MS_Z.fullmatch(body["createdAt"])
    assert ISO_MS_Z.fullmatch(body["updatedAt"])


async def test_create_keeps_the_optional_fields(api: Api) -> None:
    body = template_body(
        callbackUrl="https://hooks.example.com/moderation", moderationNotifyEmail="ops@example.com"
    )
    reply = await api.create_template(body)
    assert reply.status == 200
    assert reply.body["callbackUrl"] == "https://hooks.example.com/moderation"
    assert reply.body["moderationNotifyEmail"] == "ops@example.com"


async def test_service_ids_increase(api: Api) -> None:
    first = (await api.create_template()).body["serviceId"]
    second = (await api.create_template()).body["serviceId"]
    assert second > first


async def test_create_needs_the_sender_query_parameter(api: Api) -> None:
    reply = await api.call("POST", TEMPLATES, json=template_body())
    assert reply.status == 400
    assert reply.body["code"] == "400000000"


async def test_create_for_an_unknown_sender_is_404(api: Api) -> None:
    reply = await api.create_template(sender="no-such-sender")
    assert reply.status == 404
    assert reply.body["code"] == "404000000"


async def test_create_for_another_accounts_sender_is_403(api: Api) -> None:
    reply = await api.create_template(sender=api.sb.foreign_sender_id)
    assert reply.status == 403
    assert reply.body["code"] == "403000000"


async def test_create_otp_without_pin_in_every_locale_is_400(api: Api) -> None:
    body = template_body(OTP_TEXT, category="OTP")
    body["locales"].append({"lang": "el", "template": "Code {{code}}"})
    body["params"].append({"name": "code", "type": "TEXT"})
    body["varExample"].append({"name": "code", "example": "1"})
    reply = await api.create_template(body)
    assert reply.status == 400
    codes = [issue["code"] for issue in reply.body["validationIssues"]]
    assert codes == ["OTP_PIN_PLACEHOLDER_REQUIRED"]
    assert "(el)" in reply.body["developerMessage"]


async def test_create_otp_with_pin_is_accepted(api: Api) -> None:
    reply = await api.create_template(template_body(OTP_TEXT, category="OTP"))
    assert reply.status == 200
    assert reply.body["category"] == "OTP"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            lambda b: b.update(params=[{"name": "user_name", "type": "TEXT"}]),
            "UNDECLARED_PLACEHOLDER",
        ),
        (lambda b: b["params"].append({"name": "extra", "type": "TEXT"}), "UNUSED_PARAM"),
        (lambda b: b["params"][0].update(type="NUMBER"), "INVALID_PARAM_TYPE"),
        (lambda b: b.update(category="Marketing"), "INVALID_CATEGORY"),
        (lambda b: b.update(locales=[]), "LOCALE_REQUIRED"),
        (lambda b: b["locales"][0].update(lang="english"), "INVALID_LANG"),
        (lambda b: b["locales"].append(dict(b["locales"][0])), "DUPLICATE_LOCALE"),
        (lambda b: b.update(varExample=[]), "VAR_EXAMPLE_MISMATCH"),
        (lambda b: b.update(callbackUrl="http://hooks.example.com/x"), "INVALID_CALLBACK_URL"),
        (lambda b: b.update(moderationNotifyEmail="not-an-email"), "INVALID_FIELD"),
        (lambda b: b.pop("params"), "FIELD_REQUIRED"),
        (lambda b: b.update(locales=[{"lang": "en"}]), "FIELD_REQUIRED"),
    ],
)
async def test_create_rules(api: Api, change: Any, code: str) -> None:
    body = template_body()
    change(body)
    reply = await api.create_template(body)
    assert reply.status == 400
    assert reply.body["code"] == "400000000"
    assert code in [issue["code"] for issue in reply.body["validationIssues"]]


async def test_create_collects_every_issue(api: Api) -> None:
    body = template_body(category="Marketing", callbackUrl="ftp://x")
    body["varExample"] = []
    reply = await api.create_template(body)
    codes = {issue["code"] for issue in reply.body["validationIssues"]}
    assert codes == {"INVALID_CATEGORY", "VAR_EXAMPLE_MISMATCH", "INVALID_CALLBACK_URL"}
    assert ";" in reply.body["developerMessage"]


async def test_create_rejects_unknown_top_level_fields(api: Api) -> None:
    reply = await api.create_template(template_body(lifecycleCallbackUrl="https://x.example/h"))
    assert reply.status == 400
    assert "lifecycleCallbackUrl" in reply.body["developerMessage"]


async def test_create_rejects_a_non_json_body(api: Api) -> None:
    token = await api.token()
    async with api.http.post(
        api.sb.base_url + TEMPLATES,
        params={"senderInfoTrackingId": api.sb.sender_id},
        data="category=OTP",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "400000000"


async def _create_many(api: Api, count: int) -> list[dict[str, Any]]:
    created = []
    for _ in range(count):
        reply = await api.create_template()
        assert reply.status == 200
        created.append(reply.body)
    return created


async def test_list_follows_cursors_across_pages(api: Api) -> None:
    created = await _create_many(api, 5)
    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "2"}
    pages = 0
    while True:
        reply = await api.call("GET", TEMPLATES, params=params)
        assert reply.status == 200
        page = reply.body
        pages += 1
        seen += [t["templateId"] for t in page]
        if len(page) < 2:
            break
        params = {
            "pageSize": "2",
            "lastServiceId": str(page[-1]["serviceId"]),
            "lastTemplateId": page[-1]["templateId"],
        }
    assert seen == [t["templateId"] for t in created]
    assert pages == 3


async def test_list_is_ordered_by_service_id_and_strictly_after_the_cursor(api: Api) -> None:
    created = await _create_many(api, 3)
    reply = await api.call("GET", TEMPLATES, params={"lastServiceId": str(created[0]["serviceId"])})
    assert [t["templateId"] for t in reply.body] == [t["templateId"] for t in created[1:]]
    reply = await api.call("GET", TEMPLATES, params={"lastTemplateId": created[1]["templateId"]})
    assert [t["templateId"] for t in reply.body] == [created[2]["templateId"]]


async def test_list_page_size_defaults_to_20(api: Api) -> None:
    await _create_many(api, 21)
    reply = await api.call("GET", TEMPLATES)
    assert len(reply.body) == 20


@pytest.mark.parametrize("size", ["0", "101", "many"])
async def test_list_rejects_a_bad_page_size(api: Api, size: str) -> None:
    reply = await api.call("GET", TEMPLATES, params={"pageSize": size})
    assert reply.status == 400


async def test_list_filters_by_sender(api: Api) -> None:
    await _create_many(api, 2)
    reply = await api.call("GET", TEMPLATES, params={"senderInfoTrackingId": api.sb.sender_id})
    assert len(reply.body) == 2
    foreign = {"senderInfoTrackingId": api.sb.foreign_sender_id}
    assert (await api.call("GET", TEMPLATES, params=foreign)).status == 403
    unknown = {"senderInfoTrackingId": "nobody"}
    assert (await api.call("GET", TEMPLATES, params=unknown)).status == 404


async def test_get_returns_the_template_and_404_when_unknown(api: Api) -> None:
    created = (await api.create_template()).body
    reply = await api.call("GET", f"{TEMPLATES}/{created['templateId']}")
    assert reply.status == 200
    assert reply.body == created
    missing = await api.call("GET", f"{TEMPLATES}/{uuid.uuid4()}")
    assert missing.status == 404
    assert missing.body["code"] == "404000000"


async def test_patch_sets_the_callback_url(api: Api) -> None:
    created = (await api.create_template()).body
    path = f"{TEMPLATES}/{created['templateId']}"
    reply = await api.call("PATCH", path, json={"callbackUrl": "https://hooks.example.com/m"})
    assert reply.status == 200
    assert reply.body["callbackUrl"] == "https://hooks.example.com/m"
    assert (await api.call("GET", path)).body["callbackUrl"] == "https://hooks.example.com/m"


async def test_patch_accepts_the_lifecycle_alias(api: Api) -> None:
    created = (await api.create_template()).body
    path = f"{TEMPLATES}/{created['templateId']}"
    reply = await api.call(
        "PATCH", path, json={"lifecycleCallbackUrl": "https://hooks.example.com/a"}
    )
    assert reply.status == 200
    assert reply.body["callbackUrl"] == "https://hooks.example.com/a"


async def test_patch_null_removes_the_callback_url(api: Api) -> None:
    created = (await api.create_template(template_body(callbackUrl="https://h.example.com/x"))).body
    path = f"{TEMPLATES}/{created['templateId']}"
    reply = await api.call("PATCH", path, json={"callbackUrl": None})
    assert reply.status == 200
    assert "callbackUrl" not in reply.body
    assert "callbackUrl" not in (await api.call("GET", path)).body


@pytest.mark.parametrize(
    "body",
    [{}, {"moderationNotifyEmail": "a@b.example"}, {"callbackUrl": "http://remote.example/x"}],
)
async def test_patch_without_a_callback_key_or_with_a_bad_url_is_400(
    api: Api, body: dict[str, Any]
) -> None:
    created = (await api.create_template()).body
    reply = await api.call("PATCH", f"{TEMPLATES}/{created['templateId']}", json=body)
    assert reply.status == 400
    assert reply.body["code"] == "400000000"


async def test_patch_with_an_empty_body_is_400(api: Api) -> None:
    created = (await api.create_template()).body
    token = await api.token()
    async with api.http.patch(
        f"{api.sb.base_url}{TEMPLATES}/{created['templateId']}",
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 400


async def test_patch_unknown_template_is_404(api: Api) -> None:
    reply = await api.call("PATCH", f"{TEMPLATES}/{uuid.uuid4()}", json={"callbackUrl": None})
    assert reply.status == 404


async def test_delete_confirms_and_forgets_the_template(api: Api) -> None:
    created = (await api.create_template()).body
    path = f"{TEMPLATES}/{created['templateId']}"
    reply = await api.call("DELETE", path)
    assert reply.status == 200
    assert reply.body == {
        "templateId": created["templateId"],
        "status": "DELETED",
        "message": "Template deleted",
    }
    assert (await api.call("GET", path)).status == 404
    assert (await api.call("DELETE", path)).status == 404
    assert (await api.call("GET", TEMPLATES)).body == []


async def test_legacy_patch_path_allows_an_empty_body(api: Api) -> None:
    created = (await api.create_template(template_body(callbackUrl="https://h.example.com/x"))).body
    legacy = f"/viber/bm/transactional-templates/{created['templateId']}"
    for body in (None, {}):
        reply = await api.call("PATCH", legacy, json=body)
        assert reply.status == 200
        assert reply.body["callbackUrl"] == "https://h.example.com/x"  # a no-op
    reply = await api.call("PATCH", legacy, json={"callbackUrl": None})
    assert "callbackUrl" not in reply.body


async def test_patch_with_both_keys_disagreeing_is_400(api: Api) -> None:
    created = (await api.create_template()).body
    reply = await api.call(
        "PATCH",
        f"{TEMPLATES}/{created['templateId']}",
        json={"callbackUrl": "https://a.example/x", "lifecycleCallbackUrl": "https://b.example/x"},
    )
    assert reply.status == 400


async def test_list_with_an_unknown_lone_last_template_id_is_400(api: Api) -> None:
    reply = await api.call("GET", TEMPLATES, params={"lastTemplateId": str(uuid.uuid4())})
    assert reply.status == 400
