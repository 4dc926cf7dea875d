"""Enumerations of the wire's string values.

Every enum is *open*: a value Routee adds tomorrow structures into a pseudo-member that keeps the
raw string (``DeliveryStatus("NEW_ONE").is_known is False``) instead of raising, so a worker never
crashes on a status it was not built for. Members are ``str`` subclasses and compare equal to
their wire value.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = [
    "DeliveryScope",
    "DeliveryStatus",
    "Label",
    "LegacyOtpType",
    "MessageKind",
    "OpenEnum",
    "TemplateCategory",
    "TemplateStatus",
]


class OpenEnum(StrEnum):
    """A ``StrEnum`` that accepts values it does not list, keeping them as they came."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """False for a value this version of the SDK does not list."""
        return type(self)._value2member_map_.get(self._value_) is self

    def __repr__(self) -> str:
        suffix = "" if self.is_known else " (unknown)"
        return f"<{type(self).__name__}.{self._name_}: {self._value_!r}{suffix}>"


class DeliveryScope(OpenEnum):
    """Which of the recipient's devices receive the message (``deliveryScope``)."""

    PRIMARY_DEVICE = "PRIMARY_DEVICE"
    ALL_DEVICES = "ALL_DEVICES"

    def to_legacy(self) -> LegacyOtpType:
        """The legacy ``POST /viber/otp`` ``type`` for this scope."""
        return _SCOPE_TO_LEGACY.get(self) or LegacyOtpType(self.value)


class LegacyOtpType(OpenEnum):
    """The legacy OTP endpoint's ``type`` (seed 000)."""

    PRIMARY_ONLY = "PRIMARY_ONLY"
    ALL_DEVICE = "ALL_DEVICE"

    def to_scope(self) -> DeliveryScope:
        """The ``deliveryScope`` that this legacy type means."""
        return _LEGACY_TO_SCOPE.get(self) or DeliveryScope(self.value)


_SCOPE_TO_LEGACY = {
    DeliveryScope.PRIMARY_DEVICE: LegacyOtpType.PRIMARY_ONLY,
    DeliveryScope.ALL_DEVICES: LegacyOtpType.ALL_DEVICE,
}
_LEGACY_TO_SCOPE = {legacy: scope for scope, legacy in _SCOPE_TO_LEGACY.items()}


class TemplateCategory(OpenEnum):
    """A template's category. OTP templates must contain ``{{pin}}``."""

    OTP = "OTP"
    TRANSACTIONAL = "Transactional"


class Label(OpenEnum):
    """A message label."""

    TRANSACTIONAL = "transactional"
    PROMOTIONAL = "promotional"


class TemplateStatus(OpenEnum):
    """A template's moderation status."""

    PENDING_MODERATION = "PENDING_MODERATION"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        """True once moderation has decided (approved or rejected)."""
        return self in (TemplateStatus.APPROVED, TemplateStatus.REJECTED)


class DeliveryStatus(OpenEnum):
    """A message's delivery status (tracking ``status.status``, callback ``status.name``)."""

    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    SEEN = "SEEN"
    FAILED = "FAILED"
    UNDELIVERED = "UNDELIVERED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        """True when no further delivery progress is expected.

        An unknown status is not final: waiting goes on until a known final one or the timeout.
        """
        return self in _FINAL_DELIVERY_STATUSES

    @property
    def is_success(self) -> bool:
        """True for a status that means the handset received the message."""
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.SEEN)


_FINAL_DELIVERY_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SEEN,
        DeliveryStatus.FAILED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.REJECTED,
    }
)


class MessageKind(OpenEnum):
    """``messageKind`` on tracking records and delivery callbacks."""

    TRANSACTIONAL_TEMPLATE = "transactional_template"
    OTP = "otp"
