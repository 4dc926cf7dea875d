"""Request models: what the client sends to Routee.

snake_case attributes; the converter writes them as the wire's camelCase and omits unset ones.
Each request can check itself against the seed's rules (``issues()``/``validate()``) so that bad
input fails before any network call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import _validation as v
from ._enums import DeliveryScope, Label, LegacyOtpType, TemplateCategory
from ._errors import ValidationIssue
from ._fields import required_on_wire, secret_field, secret_mapping_field, url_field, wire_field

if TYPE_CHECKING:
    from ._responses import Template

__all__ = [
    "CreateTemplate",
    "LegacyOtp",
    "OtpParams",
    "SendMessage",
    "TemplateCallbackUpdate",
    "TemplateLocale",
    "TemplateParam",
    "VarExample",
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
    # Optional fields are checked only when set (every check accepts None): a send usually
    # sets few of them, and each check skipped is a call less on the hot path.
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
        issues = _common_send_issues(
            self.sender_info_tracking_id,
            self.to,
            self.seq,
            self.ttl,
            None,  # a free-form reporting label on this endpoint
            self.delivery_scope,
        )
        issues += v.check_required_text(self.template_id, "templateId")
        params: Any = self.template_params  # untyped callers may pass anything
        if type(params) is not dict and not isinstance(params, Mapping):
            issues.append(
                ValidationIssue(v.Code.INVALID_FIELD, "templateParams must be a mapping.")
            )
            params = {}
        if template is None:
            issues += v.check_template_params(params, lang=self.template_lang)
        else:
            issues += v.check_template_params(
                params,
                lang=self.template_lang,
                declared=template.param_names,
                languages=template.languages,
                is_otp=template.is_otp,
            )
        if self.callback_url is not None:
            issues += v.check_callback_url(self.callback_url, "callbackUrl")
        if self.inbound_url is not None:
            issues += v.check_callback_url(self.inbound_url, "inboundUrl")
        return issues

    def validate(self, template: Template | None = None) -> None:
        """Raise :class:`ValidationError` with every issue found, if any."""
        # A subclass may add rules to issues(): only SendMessage itself takes the one pass.
        if type(self) is not SendMessage or not _plainly_valid(self, template):
            v.raise_if(self.issues(template))


# -- the common send, checked in one pass -----------------------------------------------------

#: The last template a send was checked against, with what the check needs of it: a fan-out
#: checks every message against the same one. One tuple, replaced whole (never torn).
_template_plan: tuple[Template, frozenset[str], frozenset[str], bool] | None = None


def _plan(template: Template) -> tuple[Template, frozenset[str], frozenset[str], bool]:
    global _template_plan
    plan = _template_plan
    if plan is None or plan[0] is not template:
        plan = _template_plan = (
            template,
            frozenset(template.languages),
            frozenset(template.param_names),
            template.is_otp,
        )
    return plan


def _plainly_valid(message: SendMessage, template: Template | None) -> bool:
    """True when ``message`` certainly breaks no rule: the common send, checked in one pass.

    A send is checked on every attempt of every message, and :meth:`SendMessage.issues` makes
    about twenty Python calls to say "nothing". This accepts only what it can vouch for (plain
    ASCII ``str`` values, no URLs, string names, parameter values without ``.`` or ``:``):
    ASCII text is its own visible form and counts one UTF-16 unit per character. Anything else,
    valid or not, is left to ``issues()``, which alone words the issues.
    """
    sender = message.sender_info_tracking_id
    to = message.to
    template_id = message.template_id
    lang = message.template_lang
    params = message.template_params
    scope = message.delivery_scope
    seq = message.seq
    ttl = message.ttl
    if not (
        type(sender) is str
        and sender.isascii()
        and sender.strip()
        and type(to) is str
        and v.E164.fullmatch(to) is not None
        and type(template_id) is str
        and template_id.isascii()
        and template_id.strip()
        and type(lang) is str
        and lang.isascii()
        and lang.strip()
        and type(params) is dict
        and (scope is None or (type(scope) is DeliveryScope and scope in v.DELIVERY_SCOPES))
        and (seq is None or (type(seq) is int and 0 <= seq <= MAX_SEQ))
        and (ttl is None or (type(ttl) is int and 1 <= ttl <= v.INT64_MAX))
        and message.callback_url is None
        and message.inbound_url is None
    ):
        return False
    for name, value in params.items():
        if (
            type(name) is not str
            or type(value) is not str
            or not value.isascii()
            or len(value) > v.MAX_PARAM_LENGTH
            or "." in value
            or ":" in value
            or not value.strip()
        ):
            return False
    if template is None:
        return True
    _, languages, declared, is_otp = _plan(template)
    return lang in languages and params.keys() == declared and (not is_otp or "pin" in params)


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
class TemplateParam:
    """A placeholder declared by a template (``{{name}}``); Routee's only type is ``TEXT``."""

    name: str
    type: str = required_on_wire("TEXT")


@attrs.frozen
class TemplateLocale:
    """One language version of a template's text."""

    lang: str
    template: str


@attrs.frozen
class VarExample:
    """An example value for a placeholder, shown to moderators."""

    name: str
    example: str


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
