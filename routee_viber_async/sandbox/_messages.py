"""Handlers of the sends and tracking: ``POST /viber/transactional/messages``, legacy
``POST /viber/otp`` and ``GET /viber/tracking/{trackingId}``.

A send is checked in this order: JSON object body, no unknown top-level field, the fields' own
shapes (generic 400), the sender (404 unknown, 403 another account's), the template (404 unknown,
another sender's or not approved), then seed 001's send-time validation of ``templateLang`` and
``templateParams`` (400 ``400019029`` with every issue).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .._enums import DeliveryScope, DeliveryStatus, LegacyOtpType, MessageKind, TemplateStatus
from .._errors import ValidationIssue
from .._masking import mask_secrets
from .._validation import (
    Code,
    check_callback_url,
    check_delivery_scope,
    check_label,
    check_lang,
    check_optional_int,
    check_recipient,
    check_required_text,
    check_template_params,
)
from ._context import DEFAULT_OTP_TEMPLATE_ID, Context, account_of, context_of, resolve_sender
from ._inbox import render
from ._state import MessageRecord, Sender, TemplateRecord
from ._views import legacy_otp_response, send_response, tracking_view
from ._wire import (
    SEND_VALIDATION_ERROR,
    ApiError,
    bad_request,
    iso_now,
    json_response,
    read_json_object,
)

__all__ = ["OTP_PARAM_KEYS", "get_tracking", "send_legacy_otp", "send_message"]

_SEND_FIELDS = frozenset(
    {
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
)
_OTP_FIELDS = frozenset(
    {
        "senderInfoTrackingId",
        "to",
        "ttl",
        "seq",
        "label",
        "type",
        "templateId",
        "templateParams",
        "templateLang",
    }
)
#: The legacy OTP ``templateParams`` keys (seed 000).
OTP_PARAM_KEYS = (
    "pin",
    "businessPlatformName",
    "pinType",
    "codeValidityTime",
    "businessPlatformActionName",
    "codeReason",
)


def _reject_unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"Unknown field(s) in the request: {', '.join(unknown)}.")


def _optional_type(
    body: Mapping[str, Any], key: str, kind: type, what: str
) -> list[ValidationIssue]:
    value = body.get(key)
    if value is None or (isinstance(value, kind) and not (kind is str and not value)):
        return []
    return [ValidationIssue(Code.INVALID_FIELD, f"{key} must be {what}.")]


def _common_issues(body: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = check_required_text(body.get("senderInfoTrackingId"), "senderInfoTrackingId")
    issues += check_recipient(body.get("to"))
    issues += check_optional_int(body.get("seq"), "seq")
    issues += check_optional_int(body.get("ttl"), "ttl", minimum=1)
    params = body.get("templateParams")
    if params is not None and not isinstance(params, dict):
        issues.append(ValidationIssue(Code.INVALID_FIELD, "templateParams must be an object."))
    return issues


def _params(body: Mapping[str, Any]) -> dict[str, Any]:
    params = body.get("templateParams")
    return params if isinstance(params, dict) else {}


def _approved_template(
    ctx: Context, sender: Sender, template_id: str, *, otp_only: bool = False
) -> TemplateRecord:
    template = ctx.store.templates.get(template_id)
    if (
        template is None
        or template.sender_id != sender.sender_id
        or template.status != TemplateStatus.APPROVED
        or (otp_only and not template.is_otp)
    ):
        kind = "an approved OTP template" if otp_only else "an approved template"
        raise ApiError(404, f"Template {template_id} was not found as {kind} of this sender.")
    return template


def _seq(ctx: Context, body: Mapping[str, Any]) -> int:
    seq = body.get("seq")
    if seq is None:
        return ctx.store.assign_seq()
    ctx.store.note_supplied_seq(seq)
    return int(seq)


def _accept(
    ctx: Context, record: MessageRecord, template: TemplateRecord, params: Mapping[str, Any]
) -> None:
    """Store and start delivering a send; its text, pin included, goes to the inbox only."""
    ctx.store.add_message(record)
    ctx.inbox.add(record, render(template, record.template_lang, params))
    ctx.delivery.accept(record)


async def send_message(request: web.Request) -> web.Response:
    """``POST /viber/transactional/messages``: send an approved template."""
    ctx = context_of(request)
    body = await read_json_object(request)
    _reject_unknown(body, _SEND_FIELDS)
    issues = _common_issues(body)
    issues += check_required_text(body.get("templateId"), "templateId")
    issues += check_delivery_scope(body.get("deliveryScope"))
    issues += check_callback_url(body.get("callbackUrl"), "callbackUrl")
    issues += check_callback_url(body.get("inboundUrl"), "inboundUrl")
    issues += _optional_type(body, "label", str, "a string")
    issues += _optional_type(body, "multipleSinglesMessageId", str, "a string")
    issues += _optional_type(body, "sessionMessage", bool, "a boolean")
    if issues:
        raise bad_request(issues)
    sender = resolve_sender(ctx, account_of(request), body["senderInfoTrackingId"])
    template = _approved_template(ctx, sender, body["templateId"])
    params = _params(body)
    issues = check_template_params(
        params,
        lang=body.get("templateLang"),
        declared=template.param_names,
        languages=template.languages,
        is_otp=template.is_otp,
    )
    if issues:
        raise ApiError(400, code=SEND_VALIDATION_ERROR, issues=issues)
    now = iso_now()
    record = MessageRecord(
        tracking_id=str(uuid.uuid4()),
        kind=MessageKind.TRANSACTIONAL_TEMPLATE,
        account_id=sender.account_id,
        sender_id=sender.sender_id,
        sender_name=sender.name,
        to=body["to"],
        template_id=template.template_id,
        template_lang=body["templateLang"],
        delivery_scope=body.get("deliveryScope") or DeliveryScope.PRIMARY_DEVICE.value,
        seq=_seq(ctx, body),
        params=mask_secrets(dict(params)),
        created_at=now,
        status=DeliveryStatus.QUEUED,
        status_date=now,
        price=ctx.options.price,
        callback_url=body.get("callbackUrl"),
        ttl=body.get("ttl"),
        label=body.get("label"),
        session_message=body.get("sessionMessage"),
        multiple_singles_message_id=body.get("multipleSinglesMessageId"),
        inbound_url=body.get("inboundUrl"),
    )
    _accept(ctx, record, template, params)
    return json_response(send_response(record))


def _legacy_param_issues(
    params: Mapping[str, Any], lang: str, template: TemplateRecord, *, builtin: bool
) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    checked = dict(params)
    validity = checked.get("codeValidityTime")
    if validity is not None and (isinstance(validity, bool) or not isinstance(validity, int)):
        issues.append(
            ValidationIssue(
                Code.INVALID_PARAM_TYPE, "Parameter codeValidityTime must be an integer."
            )
        )
        del checked["codeValidityTime"]
    if builtin:
        # The built-in template takes any of seed 000's keys; only pin is required.
        for name in checked:
            if name not in OTP_PARAM_KEYS:
                issues.append(
                    ValidationIssue(
                        Code.UNKNOWN_PARAM, f"Parameter {name} is not a Viber OTP parameter."
                    )
                )
        declared = None
    else:
        declared = template.param_names
    issues += check_template_params(
        checked, lang=lang, declared=declared, languages=template.languages, is_otp=True
    )
    return issues


async def send_legacy_otp(request: web.Request) -> web.Response:
    """Legacy ``POST /viber/otp`` (seed 000)."""
    ctx = context_of(request)
    body = await read_json_object(request)
    _reject_unknown(body, _OTP_FIELDS)
    issues = _common_issues(body)
    issues += check_label(body.get("label"))
    otp_type = body.get("type")
    if otp_type is not None and not (
        isinstance(otp_type, str) and LegacyOtpType(otp_type).is_known
    ):
        issues.append(
            ValidationIssue(Code.INVALID_FIELD, "type must be PRIMARY_ONLY or ALL_DEVICE.")
        )
    issues += _optional_type(body, "templateId", str, "a template id")
    if body.get("templateLang") is not None:
        issues += check_lang(body["templateLang"], "templateLang")
    if issues:
        raise bad_request(issues)
    sender = resolve_sender(ctx, account_of(request), body["senderInfoTrackingId"])
    template_id = body.get("templateId")
    builtin = template_id is None or template_id == DEFAULT_OTP_TEMPLATE_ID
    if template_id is None or builtin:
        template = ctx.default_otp_template
    else:
        template = _approved_template(ctx, sender, template_id, otp_only=True)
    lang = body.get("templateLang") or template.languages[0]
    params = _params(body)
    issues = _legacy_param_issues(params, lang, template, builtin=builtin)
    if issues:
        raise ApiError(400, code=SEND_VALIDATION_ERROR, issues=issues)
    legacy_type = LegacyOtpType(otp_type or LegacyOtpType.PRIMARY_ONLY.value)
    now = iso_now()
    record = MessageRecord(
        tracking_id=str(uuid.uuid4()),
        kind=MessageKind.OTP,
        account_id=sender.account_id,
        sender_id=sender.sender_id,
        sender_name=sender.name,
        to=body["to"],
        template_id=template.template_id,
        template_lang=lang,
        delivery_scope=legacy_type.to_scope().value,
        seq=_seq(ctx, body),
        params=mask_secrets(dict(params)),
        created_at=now,
        status=DeliveryStatus.QUEUED,
        status_date=now,
        price=ctx.options.price,
        ttl=body.get("ttl") or ctx.options.legacy_otp_ttl,
        label=body.get("label") or "transactional",
        legacy_type=legacy_type.value,
    )
    _accept(ctx, record, template, params)
    return json_response(legacy_otp_response(record, ctx.options.application_name, params))


async def get_tracking(request: web.Request) -> web.Response:
    """``GET /viber/tracking/{trackingId}``."""
    ctx = context_of(request)
    tracking_id = request.match_info["tracking_id"]
    record = ctx.store.messages.get(tracking_id)
    if record is None or record.account_id != account_of(request):
        raise ApiError(404, f"Tracking id {tracking_id} was not found.")
    return json_response(tracking_view(record, ctx.options.application_name))
