"""Request models: what the client sends to Routee.

snake_case attributes; the converter writes them as the wire's camelCase and omits unset ones.
Each request can check itself against the seed's rules (``issues()``/``validate()``) so that bad
input fails before any network call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from . import _validation as v
from ._enums import DeliveryScope, Label, LegacyOtpType, TemplateCategory
from ._errors import ValidationIssue
from ._fields import secret_field, secret_mapping_field, url_field, wire_field
from ._template_parts import TemplateLocale, TemplateParam, VarExample

if TYPE_CHECKING:
    from ._responses import Template

__all__ = [
    "CreateTemplate",
    "LegacyOtp",
    "OtpParams",
    "SendMessage",
    "TemplateCallbackUpdate",
]

#: ``seq`` values travel as JSON numbers: keep them exact in a double.
MAX_SEQ = 2**53 - 1


def _scope_to_legacy(scope: Any) -> Any:
    return None if scope is None else DeliveryScope(scope).to_legacy()


def _legacy_to_scope(value: Any) -> Any:
    return None if value is None else LegacyOtpType(value).to_scope()


def _common_send_issues(
    sender: object, to: object, seq: object, ttl: object, label: object, scope: object
) -> list[ValidationIssue]:
    # Optional fields are checked only when set: a send usually sets few of them.
    issues = v.check_required_text(sender, "senderInfoTrackingId")
    issues += v.check_recipient(to)
    if seq is not None:
        issues += v.check_optional_int(seq, "seq")
        if isinstance(seq, int) and seq > MAX_SEQ:
            issues.append(ValidationIssue(v.Code.INVALID_FIELD, "seq must be below 2**53."))
    if ttl is not None:
        issues += v.check_optional_int(ttl, "ttl", minimum=1)
    if label is not None:
        issues += v.check_label(label)
    if scope is not None:
        issues += v.check_delivery_scope(scope)
    return issues


class TemplateRules(NamedTuple):
    """What a send is checked against, read off its template once."""

    declared: Sequence[str]
    languages: Sequence[str]
    is_otp: bool

    @classmethod
    def of(cls, template: Template) -> TemplateRules:
        """The rules of ``template``."""
        return cls(template.param_names, template.languages, template.is_otp)


def send_message_issues(
    sender: object,
    to: object,
    template_id: object,
    template_lang: object,
    template_params: object,
    template: TemplateRules | None = None,
    *,
    delivery_scope: object = None,
    seq: object = None,
    ttl: object = None,
    callback_url: object = None,
    inbound_url: object = None,
) -> list[ValidationIssue]:
    """The rules of :meth:`SendMessage.issues`, on the fields of a message.

    ``send-many`` checks each input row through this before it builds any message, with the
    template's rules read once for the whole input.
    """
    issues = _common_send_issues(
        sender,
        to,
        seq,
        ttl,
        None,
        delivery_scope,  # label: free-form on this endpoint
    )
    issues += v.check_required_text(template_id, "templateId")
    params: Any = template_params  # untyped callers may pass anything
    if type(params) is not dict and not isinstance(params, Mapping):
        issues.append(ValidationIssue(v.Code.INVALID_FIELD, "templateParams must be a mapping."))
        params = {}
    if template is None:
        issues += v.check_template_params(params, lang=template_lang)
    else:
        issues += v.check_template_params(
            params,
            lang=template_lang,
            declared=template.declared,
            languages=template.languages,
            is_otp=template.is_otp,
        )
    if callback_url is not None:
        issues += v.check_callback_url(callback_url, "callbackUrl")
    if inbound_url is not None:
        issues += v.check_callback_url(inbound_url, "inboundUrl")
    return issues


@attrs.frozen
class SendMessage:
    """``POST /viber/transactional/messages``: send an approved template (OTP or transactional).

    OTP-category templates need ``pin`` in ``template_params``. Without ``seq`` the client assigns
    one before the first attempt, and every attempt carries it.
    """

    sender_info_tracking_id: str
    to: str
    template_id: str
    template_lang: str
    template_params: Mapping[str, str] = secret_mapping_field(factory=dict)
    delivery_scope: DeliveryScope | None = None
    seq: int | None = None
    ttl: int | None = None
    inbound_url: str | None = url_field()
    callback_url: str | None = url_field()
    label: Label | None = None
    multiple_singles_message_id: str | None = None
    session_message: bool | None = None

    def issues(self, template: Template | None = None) -> list[ValidationIssue]:
        """Every rule this message breaks; with its ``template``, the template-aware ones too."""
        return send_message_issues(
            self.sender_info_tracking_id,
            self.to,
            self.template_id,
            self.template_lang,
            self.template_params,
            None if template is None else TemplateRules.of(template),
            delivery_scope=self.delivery_scope,
            seq=self.seq,
            ttl=self.ttl,
            callback_url=self.callback_url,
            inbound_url=self.inbound_url,
        )

    def validate(self, template: Template | None = None) -> None:
        """Raise :class:`ValidationError` with every issue found, if any."""
        v.raise_if(self.issues(template))


@attrs.frozen
class OtpParams:
    """The legacy OTP endpoint's ``templateParams`` keys (seed 000)."""

    pin: str | None = secret_field()
    business_platform_name: str | None = None
    pin_type: str | None = None
    code_validity_time: int | None = None
    business_platform_action_name: str | None = None
    code_reason: str | None = None


@attrs.frozen
class LegacyOtp:
    """Legacy ``POST /viber/otp`` (seed 000), for older integrations.

    ``delivery_scope`` goes on the wire as the legacy ``type``: ``PRIMARY_DEVICE`` →
    ``PRIMARY_ONLY``, ``ALL_DEVICES`` → ``ALL_DEVICE``.
    """

    sender_info_tracking_id: str
    to: str
    ttl: int | None = None
    seq: int | None = None
    label: Label | None = None
    delivery_scope: DeliveryScope | None = wire_field(
        "type", codec=(_scope_to_legacy, _legacy_to_scope)
    )
    template_id: str | None = None
    template_params: OtpParams | Mapping[str, str | int] | None = secret_mapping_field(default=None)
    template_lang: str | None = None

    def issues(self, template: Template | None = None) -> list[ValidationIssue]:
        """Every rule this request breaks."""
        issues = _common_send_issues(
            self.sender_info_tracking_id,
            self.to,
            self.seq,
            self.ttl,
            self.label,
            self.delivery_scope,
        )
        given: Any = self.template_params  # untyped callers may pass anything
        if given is None or isinstance(given, OtpParams | Mapping):
            params = self.params_dict()
        else:
            issues.append(
                ValidationIssue(v.Code.INVALID_FIELD, "templateParams must be a mapping.")
            )
            params = {}
        validity = params.get("codeValidityTime")
        if validity is not None and (
            isinstance(validity, bool)
            or not isinstance(validity, int)
            or not v.INT64_MIN <= validity <= v.INT64_MAX
        ):
            issues.append(
                ValidationIssue(
                    v.Code.INVALID_PARAM_TYPE,
                    "Parameter codeValidityTime must be an integer within 64 bits.",
                )
            )
            params = {k: p for k, p in params.items() if k != "codeValidityTime"}
        if self.template_lang is not None:
            issues += v.check_lang(self.template_lang, "templateLang")
        if template is None:
            issues += v.check_param_entries(params)
        else:
            issues += v.check_template_params(
                params,
                # templateLang is optional on the legacy endpoint
                lang=self.template_lang or next(iter(template.languages), None),
                declared=template.param_names,
                languages=template.languages,
                is_otp=template.is_otp,
            )
        return issues

    def validate(self, template: Template | None = None) -> None:
        """Raise :class:`ValidationError` with every issue found, if any."""
        v.raise_if(self.issues(template))

    def params_dict(self) -> dict[str, Any]:
        """``template_params`` as the wire's camelCase mapping (unset keys left out)."""
        params = self.template_params
        if params is None:
            return {}
        if isinstance(params, OtpParams):
            from ._converter import to_wire

            wire = to_wire(params)
            assert isinstance(wire, dict)
            return wire
        return dict(params)


@attrs.frozen
class CreateTemplate:
    """The body of ``POST /viber/transactional/templates``."""

    category: TemplateCategory
    params: Sequence[TemplateParam]
    locales: Sequence[TemplateLocale]
    var_example: Sequence[VarExample]
    callback_url: str | None = url_field()
    moderation_notify_email: str | None = None

    def issues(self) -> list[ValidationIssue]:
        """Every rule this template definition breaks."""
        issues = v.check_template_definition(
            category=self.category,
            params=[(p.name, p.type) for p in self.params],
            locales=[(loc.lang, loc.template) for loc in self.locales],
            var_example=[e.name for e in self.var_example],
            callback_url=self.callback_url,
        )
        email = self.moderation_notify_email
        if email is not None and (not isinstance(email, str) or "@" not in email):
            issues.append(
                ValidationIssue(
                    v.Code.INVALID_FIELD, "moderationNotifyEmail must be an email address."
                )
            )
        return issues

    def validate(self) -> None:
        """Raise :class:`ValidationError` with every issue found, if any."""
        v.raise_if(self.issues())


@attrs.frozen
class TemplateCallbackUpdate:
    """The body of ``PATCH /viber/transactional/templates/{id}``: ``callbackUrl`` or ``null``.

    The key is always sent: ``None`` removes the stored URL (``{"callbackUrl": null}``).
    """

    callback_url: str | None = url_field(default=attrs.NOTHING)

    def issues(self) -> list[ValidationIssue]:
        """Every rule this update breaks."""
        return v.check_callback_url(self.callback_url, "callbackUrl")
