"""``client.templates``: the exact requests (method, URL, query, body, headers) and parsed answers.

aioresponses stands in for Routee at the HTTP boundary: every request the client makes is
recorded, and a request nobody registered fails the test.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aioresponses import aioresponses
from client_helpers import (
    SENDER,
    TEMPLATES,
    TOKEN,
    all_calls,
    calls,
    json_body,
    only_call,
    template_wire,
    url,
)

from routee_viber_async import (
    CreateTemplate,
    DeleteConfirmation,
    NotFoundError,
    RouteeViberClient,
    Template,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    TemplateStatus,
    ValidationError,
    VarExample,
)


def otp_template(**options: str) -> CreateTemplate:
    return CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin")],
        [TemplateLocale("en", "Your code is {{pin}}.")],
        [VarExample("pin", "123456")],
        **options,
    )


def assert_json_headers(call: object) -> None:
    headers = call.kwargs["headers"]  # type: ignore[attr-defined]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"


# -- create -----------------------------------------------------------------------------------


async def test_create_posts_the_camelcase_body_with_the_sender_in_the_query(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = url(TEMPLATES, senderInfoTrackingId=SENDER)
    mocked.post(target, payload=template_wire("t-9", 1009, vendorFlag=True))

    template = await client.templates.create(SENDER, otp_template())

    call = only_call(mocked, "POST", target)
    assert json_body(call) == {
        "category": "OTP",
        "params": [{"name": "pin", "type": "TEXT"}],
        "locales": [{"lang": "en", "template": "Your code is {{pin}}."}],
        "varExample": [{"name": "pin", "example": "123456"}],
    }
    assert_json_headers(call)
    assert isinstance(template, Template)
    assert template.template_id == "t-9"
    assert template.service_id == "1009"  # a number on the wire, an id for us
    assert template.status is TemplateStatus.PENDING_MODERATION
    assert template.category is TemplateCategory.OTP
    assert template.params == [TemplateParam("pin", "TEXT")]
    assert template.locales == [TemplateLocale("en", "Your code is {{pin}}.")]
    assert template.var_example == [VarExample("pin", "123456")]
    assert template.created_at == datetime(2026, 5, 20, 5, 45, 10, 1000, tzinfo=UTC)
    assert template.extra == {"vendorFlag": True}
    assert template.is_otp
    assert not template.is_approved


async def test_create_sends_the_optional_fields_only_when_set(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = url(TEMPLATES, senderInfoTrackingId=SENDER)
    mocked.post(target, payload=template_wire(), repeat=True)
    await client.templates.create(
        SENDER,
        otp_template(
            callback_url="https://hooks.example.com/moderation",
            moderation_notify_email="ops@example.com",
        ),
    )
    body = json_body(calls(mocked, "POST", target)[0])
    assert body["callbackUrl"] == "https://hooks.example.com/moderation"
    assert body["moderationNotifyEmail"] == "ops@example.com"
    assert set(body) == {
        "category",
        "params",
        "locales",
        "varExample",
        "callbackUrl",
        "moderationNotifyEmail",
    }


@pytest.mark.parametrize(
    ("sender", "template", "code"),
    [
        ("", otp_template(), "FIELD_REQUIRED"),
        (
            SENDER,
            CreateTemplate(TemplateCategory.OTP, [], [TemplateLocale("en", "No pin here.")], []),
            "OTP_PIN_PLACEHOLDER_REQUIRED",
        ),
        (SENDER, otp_template(callback_url="http://hooks.example.com/x"), "INVALID_CALLBACK_URL"),
        (SENDER, otp_template(moderation_notify_email="not-an-email"), "INVALID_FIELD"),
    ],
)
async def test_create_refuses_bad_input_before_any_request(
    client: RouteeViberClient,
    mocked: aioresponses,
    sender: str,
    template: CreateTemplate,
    code: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.templates.create(sender, template)
    assert code in caught.value.codes
    assert caught.value.status is None  # local, not the server's
    assert caught.value.attempts == 0
    assert all_calls(mocked) == []


async def test_create_without_validation_lets_the_server_judge(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = url(TEMPLATES, senderInfoTrackingId=SENDER)
    mocked.post(target, status=400, payload={"code": "400000000", "developerMessage": "no pin"})
    bad = CreateTemplate(TemplateCategory.OTP, [], [TemplateLocale("en", "No pin.")], [])
    with pytest.raises(ValidationError) as caught:
        await client.templates.create(SENDER, bad, validate=False)
    assert caught.value.status == 400
    assert caught.value.code == "400000000"
    assert json_body(only_call(mocked, "POST", target))["params"] == []


# -- get, update, delete ---------------------------------------------------------------------


async def test_get_quotes_the_id_as_one_path_segment(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = f"{TEMPLATES}/a%2Fb%20c"
    mocked.get(target, payload=template_wire("a/b c", status="APPROVED"))
    template = await client.templates.get("a/b c")
    call = only_call(mocked, "GET", target)
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert "Content-Type" not in call.kwargs["headers"]
    assert call.kwargs["data"] is None
    assert template.template_id == "a/b c"
    assert template.is_approved


async def test_unknown_status_and_fields_are_kept(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.get(
        f"{TEMPLATES}/t-1",
        payload=template_wire(status="ARCHIVED_BY_VIBER", reviewer={"id": 7}, category="Promo"),
    )
    template = await client.templates.get("t-1")
    assert template.status == "ARCHIVED_BY_VIBER"
    assert isinstance(template.status, TemplateStatus)
    assert not template.status.is_known
    assert not template.status.is_final
    assert template.category == "Promo"
    assert template.extra == {"reviewer": {"id": 7}}


async def test_get_reads_routees_aliases(client: RouteeViberClient, mocked: aioresponses) -> None:
    wire = template_wire(lifecycleCallbackUrl="https://hooks.example.com/m")
    wire["id"] = wire.pop("templateId")
    wire["templateStatus"] = wire.pop("status")
    mocked.get(f"{TEMPLATES}/t-1", payload=wire)
    template = await client.templates.get("t-1")
    assert template.template_id == "t-1"
    assert template.status is TemplateStatus.PENDING_MODERATION
    assert template.callback_url == "https://hooks.example.com/m"


@pytest.mark.parametrize("bad_id", ["", "   "])
async def test_blank_ids_are_refused_before_any_request(
    client: RouteeViberClient, mocked: aioresponses, bad_id: str
) -> None:
    for call in (
        client.templates.get(bad_id),
        client.templates.delete(bad_id),
        client.templates.update_callback(bad_id, None),
    ):
        with pytest.raises(ValidationError):
            await call
    assert all_calls(mocked) == []


async def test_update_callback_sets_the_url(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = f"{TEMPLATES}/t-1"
    mocked.patch(target, payload=template_wire(callbackUrl="https://hooks.example.com/m"))
    template = await client.templates.update_callback("t-1", "https://hooks.example.com/m")
    call = only_call(mocked, "PATCH", target)
    assert call.kwargs["data"] == b'{"callbackUrl":"https://hooks.example.com/m"}'
    assert_json_headers(call)
    assert template.callback_url == "https://hooks.example.com/m"


async def test_update_callback_none_sends_an_explicit_null(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = f"{TEMPLATES}/t-1"
    mocked.patch(target, payload=template_wire())
    template = await client.templates.update_callback("t-1", None)
    call = only_call(mocked, "PATCH", target)
    assert json_body(call) == {"callbackUrl": None}
    assert_json_headers(call)
    assert template.callback_url is None


async def test_update_callback_refuses_a_bad_url_before_any_request(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.templates.update_callback("t-1", "ftp://hooks.example.com/m")
    assert caught.value.codes == ["INVALID_CALLBACK_URL"]
    assert all_calls(mocked) == []


async def test_delete_returns_the_confirmation(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    target = f"{TEMPLATES}/t-1"
    mocked.delete(
        target,
        payload={"templateId": "t-1", "status": "DELETED", "message": "gone", "at": 1},
    )
    confirmation = await client.templates.delete("t-1")
    call = only_call(mocked, "DELETE", target)
    assert call.kwargs["data"] is None
    assert confirmation == DeleteConfirmation("t-1", "DELETED", "gone", extra={"at": 1})


async def test_delete_with_an_empty_answer(client: RouteeViberClient, mocked: aioresponses) -> None:
    mocked.delete(f"{TEMPLATES}/t-1", body=b"", content_type="application/json")
    assert await client.templates.delete("t-1") == DeleteConfirmation()


async def test_a_404_is_a_not_found_error(client: RouteeViberClient, mocked: aioresponses) -> None:
    mocked.get(f"{TEMPLATES}/gone", status=404, payload={"code": "404000000"})
    with pytest.raises(NotFoundError) as caught:
        await client.templates.get("gone")
    assert caught.value.status == 404
    assert caught.value.path == "/viber/transactional/templates/gone"


# -- list --------------------------------------------------------------------------------------


async def collect(client: RouteeViberClient, **options: object) -> list[str]:
    return [t.template_id async for t in client.templates.list(**options)]  # type: ignore[arg-type]


async def test_list_follows_the_last_items_cursor_until_a_short_page(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    first = url(TEMPLATES, pageSize="2", senderInfoTrackingId=SENDER)
    second = url(
        TEMPLATES,
        pageSize="2",
        senderInfoTrackingId=SENDER,
        lastServiceId="1002",
        lastTemplateId="t-2",
    )
    third = url(
        TEMPLATES,
        pageSize="2",
        senderInfoTrackingId=SENDER,
        lastServiceId="1004",
        lastTemplateId="t-4",
    )
    mocked.get(first, payload=[template_wire("t-1", 1001), template_wire("t-2", 1002)])
    mocked.get(second, payload=[template_wire("t-3", 1003), template_wire("t-4", 1004)])
    mocked.get(third, payload=[template_wire("t-5", 1005)])

    ids = await collect(client, page_size=2, sender_info_tracking_id=SENDER)

    assert ids == ["t-1", "t-2", "t-3", "t-4", "t-5"]
    assert all_calls(mocked) == [("GET", first), ("GET", second), ("GET", third)]
    for target in (first, second, third):
        assert calls(mocked, "GET", target)[0].kwargs["data"] is None


async def test_list_stops_at_an_empty_page(client: RouteeViberClient, mocked: aioresponses) -> None:
    first = url(TEMPLATES)
    second = url(TEMPLATES, lastServiceId="1002", lastTemplateId="t-2")
    mocked.get(first, payload=[template_wire("t-1", 1001), template_wire("t-2", 1002)])
    mocked.get(second, payload=[])
    assert await collect(client) == ["t-1", "t-2"]
    assert all_calls(mocked) == [("GET", first), ("GET", second)]


async def test_list_of_a_full_last_page_asks_once_more(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    first = url(TEMPLATES, pageSize="1")
    second = url(TEMPLATES, pageSize="1", lastServiceId="1001", lastTemplateId="t-1")
    mocked.get(first, payload=[template_wire("t-1", 1001)])
    mocked.get(second, payload=[])
    assert await collect(client, page_size=1) == ["t-1"]
    assert len(all_calls(mocked)) == 2


async def test_list_accepts_a_page_wrapped_in_an_object(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    first = url(TEMPLATES, pageSize="2")
    second = url(TEMPLATES, pageSize="2", lastServiceId="1002", lastTemplateId="t-2")
    mocked.get(
        first,
        payload={"content": [template_wire("t-1", 1001), template_wire("t-2", 1002)], "total": 3},
    )
    mocked.get(second, payload={"content": [template_wire("t-3", 1003)], "total": 3})
    assert await collect(client, page_size=2) == ["t-1", "t-2", "t-3"]


async def test_list_cursor_without_a_service_id(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    page = template_wire("t-1")
    del page["serviceId"]
    first = url(TEMPLATES, pageSize="1")
    second = url(TEMPLATES, pageSize="1", lastTemplateId="t-1")
    mocked.get(first, payload=[page])
    mocked.get(second, payload=[])
    assert await collect(client, page_size=1) == ["t-1"]
    assert all_calls(mocked) == [("GET", first), ("GET", second)]


async def test_list_stops_when_the_server_ignores_the_cursor(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    # Whatever the query, the same full page: the iterator must end, without duplicates.
    mocked.get(
        url(TEMPLATES, pageSize="2"),
        payload=[template_wire("t-1", 1001), template_wire("t-2", 1002)],
    )
    mocked.get(
        url(TEMPLATES, pageSize="2", lastServiceId="1002", lastTemplateId="t-2"),
        payload=[template_wire("t-1", 1001), template_wire("t-2", 1002)],
        repeat=True,
    )
    assert await collect(client, page_size=2) == ["t-1", "t-2"]
    assert len(all_calls(mocked)) == 2


@pytest.mark.parametrize("page_size", [0, -1, True, 2.5])
async def test_list_refuses_a_bad_page_size_before_any_request(
    client: RouteeViberClient, mocked: aioresponses, page_size: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        await collect(client, page_size=page_size)
    assert caught.value.codes == ["INVALID_FIELD"]
    assert all_calls(mocked) == []


async def test_list_refuses_an_answer_that_is_not_a_page(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.get(TEMPLATES, body=b"42", content_type="application/json")
    with pytest.raises(ValidationError):
        await collect(client)


async def test_list_finds_the_items_among_other_lists(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.get(
        url(TEMPLATES, pageSize="5"),
        payload={"links": [], "content": [template_wire("t-1", 1001)], "sort": []},
    )
    assert await collect(client, page_size=5) == ["t-1"]
