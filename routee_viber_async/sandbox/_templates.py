"""Handlers of ``/viber/transactional/templates``: create, list (cursors), get, PATCH, delete."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .._errors import ValidationIssue
from .._validation import Code, check_callback_url, check_template_definition
from ._context import Context, account_of, context_of, resolve_sender
from ._state import TemplateRecord
from ._wire import ApiError, bad_request, iso_now, json_response, read_json_object

__all__ = [
    "MAX_PAGE_SIZE",
    "create_template",
    "delete_template",
    "get_template",
    "list_templates",
    "update_template",
    "update_template_legacy",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_CREATE_FIELDS = frozenset(
    {"category", "params", "locales", "varExample", "callbackUrl", "moderationNotifyEmail"}
)
_PATCH_FIELDS = ("callbackUrl", "lifecycleCallbackUrl")


def _items(
    body: Mapping[str, Any], key: str, fields: tuple[str, str], issues: list[ValidationIssue]
) -> list[dict[str, str]]:
    """``body[key]`` as a list of objects with two string fields; problems go to ``issues``."""
    value = body.get(key)
    if value is None:
        issues.append(ValidationIssue(Code.FIELD_REQUIRED, f"{key} is required (an array)."))
        return []
    if not isinstance(value, list):
        issues.append(ValidationIssue(Code.INVALID_FIELD, f"{key} must be an array."))
        return []
    items: list[dict[str, str]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            issues.append(ValidationIssue(Code.INVALID_FIELD, f"{key}[{index}] must be an object."))
            continue
        missing = [f for f in fields if not isinstance(item.get(f), str)]
        if missing:
            issues.append(
                ValidationIssue(
                    Code.FIELD_REQUIRED,
                    f"{key}[{index}] needs the string field(s) {', '.join(missing)}.",
                )
            )
            continue
        items.append({f: item[f] for f in fields})
    return items


async def create_template(request: web.Request) -> web.Response:
    """``POST /viber/transactional/templates?senderInfoTrackingId=…``."""
    ctx = context_of(request)
    sender_id = request.query.get("senderInfoTrackingId")
    if not sender_id:
        raise bad_request("The query parameter senderInfoTrackingId is required.")
    sender = resolve_sender(ctx, account_of(request), sender_id)
    body = await read_json_object(request)
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise bad_request(f"Unknown field(s) in the template: {', '.join(unknown)}.")
    issues: list[ValidationIssue] = []
    params = _items(body, "params", ("name", "type"), issues)
    locales = _items(body, "locales", ("lang", "template"), issues)
    var_example = _items(body, "varExample", ("name", "example"), issues)
    if issues:
        raise bad_request(issues, with_issues=True)
    issues = check_template_definition(
        category=body.get("category"),
        params=[(p["name"], p["type"]) for p in params],
        locales=[(loc["lang"], loc["template"]) for loc in locales],
        var_example=[e["name"] for e in var_example],
        callback_url=body.get("callbackUrl"),
    )
    email = body.get("moderationNotifyEmail")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        issues.append(
            ValidationIssue(Code.INVALID_FIELD, "moderationNotifyEmail must be an email address.")
        )
    if issues:
        raise bad_request(issues, with_issues=True)
    now = iso_now()
    template = TemplateRecord(
        template_id=str(uuid.uuid4()),
        service_id=ctx.store.next_service_id(),
        sender_id=sender.sender_id,
        account_id=sender.account_id,
        category=str(body["category"]),
        params=params,
        locales=locales,
        var_example=var_example,
        created_at=now,
        updated_at=now,
        callback_url=body.get("callbackUrl"),
        moderation_notify_email=email,
    )
    ctx.store.templates[template.template_id] = template
    ctx.moderator.submit(template)
    ctx.inbox.changes.bump()
    return json_response(template.to_wire())


def _int_query(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"The query parameter {name} must be an integer.") from None


async def list_templates(request: web.Request) -> web.Response:
    """``GET /viber/transactional/templates``: a page strictly after the cursor.

    Items are ordered by ``(serviceId, templateId)``; the cursor is ``lastServiceId`` (with
    ``lastTemplateId`` to break a tie), or ``lastTemplateId`` alone (that template's position).
    """
    ctx = context_of(request)
    account = account_of(request)
    page_size = _int_query(request, "pageSize")
    if page_size is None:
        page_size = DEFAULT_PAGE_SIZE
    elif not 1 <= page_size <= MAX_PAGE_SIZE:
        raise bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}.")
    sender_id = request.query.get("senderInfoTrackingId") or None
    if sender_id is not None:
        resolve_sender(ctx, account, sender_id)
    last_service_id = _int_query(request, "lastServiceId")
    last_template_id = request.query.get("lastTemplateId") or None
    if last_service_id is None and last_template_id is not None:
        anchor = ctx.store.templates.get(last_template_id)
        if anchor is None or anchor.account_id != account:
            raise bad_request("lastTemplateId is unknown; pass lastServiceId with it.")
        last_service_id = anchor.service_id

    def after_cursor(template: TemplateRecord) -> bool:
        if last_service_id is None:
            return True
        if last_template_id is None:
            return template.service_id > last_service_id
        return (template.service_id, template.template_id) > (last_service_id, last_template_id)

    page: list[dict[str, Any]] = []
    # The store keeps templates in creation order, which is (serviceId, templateId) order.
    for template in ctx.store.templates.values():
        if (
            template.account_id == account
            and (sender_id is None or template.sender_id == sender_id)
            and after_cursor(template)
        ):
            page.append(template.to_wire())
            if len(page) == page_size:
                break
    return json_response(page)


def _own_template(ctx: Context, request: web.Request) -> TemplateRecord:
    template_id = request.match_info["template_id"]
    template = ctx.store.templates.get(template_id)
    if template is None or template.account_id != account_of(request):
        raise ApiError(404, f"Template {template_id} was not found.")
    return template


async def get_template(request: web.Request) -> web.Response:
    """``GET /viber/transactional/templates/{templateId}``."""
    return json_response(_own_template(context_of(request), request).to_wire())


async def update_template(request: web.Request) -> web.Response:
    """``PATCH /viber/transactional/templates/{templateId}``: the moderation webhook only.

    The body must hold ``callbackUrl`` or its alias ``lifecycleCallbackUrl`` as a key; ``null``
    removes the stored URL; ``{}`` or neither key is a 400.
    """
    return await _update(request, legacy=False)


async def update_template_legacy(request: web.Request) -> web.Response:
    """Legacy ``PATCH /viber/bm/transactional-templates/{templateId}``: as the greenfield PATCH,
    except that an empty body (or ``{}``) is a no-op that returns the template (seed 001).
    """
    return await _update(request, legacy=True)


async def _update(request: web.Request, *, legacy: bool) -> web.Response:
    ctx = context_of(request)
    template = _own_template(ctx, request)
    body = await read_json_object(request, required=False)
    if legacy and not body:
        return json_response(template.to_wire())
    unknown = sorted(set(body) - set(_PATCH_FIELDS))
    if unknown:
        raise bad_request(
            f"Only callbackUrl or lifecycleCallbackUrl may be updated; unknown: "
            f"{', '.join(unknown)}."
        )
    present = [key for key in _PATCH_FIELDS if key in body]
    if not present:
        raise bad_request("The body must include callbackUrl or lifecycleCallbackUrl.")
    if len(present) == 2 and body[present[0]] != body[present[1]]:
        raise bad_request("callbackUrl and lifecycleCallbackUrl disagree; send one of them.")
    url = body[present[0]]
    issues = check_callback_url(url, present[0])
    if issues:
        raise bad_request(issues, with_issues=True)
    template.callback_url = url
    template.updated_at = iso_now()
    return json_response(template.to_wire())


async def delete_template(request: web.Request) -> web.Response:
    """``DELETE /viber/transactional/templates/{templateId}``."""
    ctx = context_of(request)
    template = _own_template(ctx, request)
    del ctx.store.templates[template.template_id]
    ctx.inbox.changes.bump()
    return json_response(
        {"templateId": template.template_id, "status": "DELETED", "message": "Template deleted"}
    )
