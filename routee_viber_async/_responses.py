"""Response and callback models: what Routee sends back.

Every model keeps the keys it does not know in ``extra`` and every enum accepts values it does
not list, so a field or status Routee adds tomorrow never crashes a worker. ``from`` on the wire
is ``from_`` here. Template parameters echoed by Routee show ``pin`` as ``***`` in reprs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ._enums import (
    DeliveryScope,
    DeliveryStatus,
    Label,
    LegacyOtpType,
    MessageKind,
    TemplateCategory,
    TemplateStatus,
)
from ._fields import extra_field, secret_mapping_field, url_field, wire_field
from ._template_parts import TemplateLocale, TemplateParam, VarExample

__all__ = [
    "CallbackStatus",
    "DeleteConfirmation",
    "DeliveryCallback",
    "ModerationCallback",
    "OtpResult",
    "SendResult",
    "Template",
    "TemplateInfo",
    "TrackingRecord",
    "TrackingStatus",
]


@attrs.frozen
class TrackingStatus:
    """A status as send answers and tracking GET give it: ``{"status", "date", "reason"}``."""

    status: DeliveryStatus | None = None
    date: datetime | None = None
    reason: Any = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen
class CallbackStatus:
    """A status as delivery callbacks give it: ``{"name", "updatedDate"}``."""

    name: DeliveryStatus
    updated_date: datetime | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen
class SendResult:
    """The answer to ``POST /viber/transactional/messages``: accepted, not yet delivered."""

    tracking_id: str
    delivery_scope: DeliveryScope | None = None
    seq: int | None = None
    to: str | None = None
    from_: str | None = wire_field("from")
    status: TrackingStatus | None = None
    price: float | None = None
    label: Label | None = None
    session_message: bool | None = None
    callback_url: str | None = url_field()
    ttl: int | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen
class OtpResult:
    """The answer to legacy ``POST /viber/otp``: seed 000's tracking record."""

    tracking_id: str
    to: str | None = None
    from_: str | None = wire_field("from")
    country: str | None = None
    status: TrackingStatus | None = None
    application_name: str | None = None
    direction: str | None = None
    ttl: int | None = None
    seq: int | None = None
    label: Label | None = None
    otp_type: LegacyOtpType | None = wire_field("type")
    template_id: str | None = None
    template_params: Mapping[str, Any] | None = secret_mapping_field(default=None)
    template_lang: str | None = None
    extra: Mapping[str, Any] = extra_field()

    @property
    def delivery_scope(self) -> DeliveryScope | None:
        """The legacy ``type`` as a :class:`DeliveryScope`."""
        return None if self.otp_type is None else self.otp_type.to_scope()


@attrs.frozen
class TemplateInfo:
    """``transactionalTemplate``: which template a send used.

    ``template_params`` appears on tracking GET only (with ``pin`` masked by Routee), never in
    delivery callbacks.
    """

    template_id: str | None = None
    template_lang: str | None = None
    delivery_scope: DeliveryScope | None = None
    seq: int | None = None
    template_params: Mapping[str, Any] | None = secret_mapping_field(default=None)
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen
class TrackingRecord:
    """``GET /viber/tracking/{trackingId}``."""

    tracking_id: str
    to: str | None = None
    from_: str | None = wire_field("from")
    status: TrackingStatus | None = None
    message_kind: MessageKind | None = None
    transactional_template: TemplateInfo | None = None
    created_at: datetime | None = None
    template_id: str | None = None
    country: str | None = None
    price: float | None = None
    direction: str | None = None
    application_name: str | None = None
    campaign_tracking_id: str | None = None
    extra: Mapping[str, Any] = extra_field()

    @property
    def is_final(self) -> bool:
        """True when the status will not change any more."""
        return (
            self.status is not None
            and self.status.status is not None
            and (self.status.status.is_final)
        )


@attrs.frozen
class DeliveryCallback:
    """A delivery status callback POSTed to a send's ``callbackUrl``."""

    tracking_id: str
    status: CallbackStatus
    to: str | None = None
    message_kind: MessageKind | None = None
    transactional_template: TemplateInfo | None = None
    created_at: datetime | None = None
    template_id: str | None = None
    extra: Mapping[str, Any] = extra_field()

    @property
    def key(self) -> tuple[str, str]:
        """``(tracking_id, status)``: the same for a repeated delivery of this callback."""
        return (self.tracking_id, str(self.status.name))


@attrs.frozen
class ModerationCallback:
    """A template moderation callback POSTed to a template's ``callbackUrl``."""

    template_id: str
    template_status: TemplateStatus
    template_body: str | None = None
    variables: list[str] | None = None
    rejection_reason: str | None = None
    extra: Mapping[str, Any] = extra_field()

    @property
    def key(self) -> tuple[str, str]:
        """``(template_id, template_status)``: the same for a repeated delivery."""
        return (self.template_id, str(self.template_status))


@attrs.frozen
class Template:
    """A transactional template as Routee stores it."""

    #: Wire keys read as another key when that one is absent (Routee's aliases).
    __wire_aliases__: ClassVar[Mapping[str, str]] = {
        "id": "templateId",
        "templateStatus": "status",
        "lifecycleCallbackUrl": "callbackUrl",
    }

    template_id: str
    service_id: str | None = None
    sender_info_tracking_id: str | None = None
    category: TemplateCategory | None = None
    status: TemplateStatus | None = None
    params: list[TemplateParam] = attrs.field(factory=list)
    locales: list[TemplateLocale] = attrs.field(factory=list)
    var_example: list[VarExample] = attrs.field(factory=list)
    callback_url: str | None = url_field()
    moderation_notify_email: str | None = None
    rejection_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: Mapping[str, Any] = extra_field()

    @property
    def param_names(self) -> list[str]:
        """The declared placeholder names."""
        return [p.name for p in self.params]

    @property
    def languages(self) -> list[str]:
        """The locales' language codes."""
        return [loc.lang for loc in self.locales]

    @property
    def is_otp(self) -> bool:
        """True for an OTP-category template (sends need ``pin``)."""
        return self.category == TemplateCategory.OTP

    @property
    def is_approved(self) -> bool:
        """True once moderation approved the template."""
        return self.status == TemplateStatus.APPROVED


@attrs.frozen
class DeleteConfirmation:
    """The confirmation payload of ``DELETE /viber/transactional/templates/{id}``."""

    template_id: str | None = None
    status: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] = extra_field()
