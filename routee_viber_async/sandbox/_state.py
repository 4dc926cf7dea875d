"""The sandbox's in-memory store: senders, templates, accepted messages and ``seq`` bookkeeping.

Records hold no real pin: send parameters are stored masked (``pin`` → ``***``), which is also
what tracking GET shows.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from .._enums import DeliveryStatus, MessageKind, TemplateCategory, TemplateStatus
from .._validation import placeholders

__all__ = [
    "FOREIGN_ACCOUNT",
    "SANDBOX_ACCOUNT",
    "MessageRecord",
    "Sender",
    "Store",
    "TemplateRecord",
]

#: The account the sandbox's credentials belong to.
SANDBOX_ACCOUNT = "sandbox-account"
#: Another account, owner of the foreign sender.
FOREIGN_ACCOUNT = "foreign-account"


@attrs.frozen
class Sender:
    """A Viber sender (``senderInfoTrackingId``) and the account that owns it."""

    sender_id: str
    account_id: str
    name: str


@attrs.define(slots=True)
class TemplateRecord:
    """A stored transactional template."""

    template_id: str
    service_id: int
    sender_id: str
    account_id: str
    category: str
    params: list[dict[str, Any]]
    locales: list[dict[str, Any]]
    var_example: list[dict[str, Any]]
    created_at: str
    updated_at: str
    status: TemplateStatus = TemplateStatus.PENDING_MODERATION
    callback_url: str | None = None
    moderation_notify_email: str | None = None
    rejection_reason: str | None = None

    @property
    def param_names(self) -> list[str]:
        """The declared placeholder names."""
        return [str(p["name"]) for p in self.params]

    @property
    def languages(self) -> list[str]:
        """The locales' language codes, in order."""
        return [str(loc["lang"]) for loc in self.locales]

    @property
    def is_otp(self) -> bool:
        """True for an OTP-category template."""
        return self.category == TemplateCategory.OTP

    @property
    def body(self) -> str:
        """The first locale's text (the moderation callback's ``templateBody``)."""
        return str(self.locales[0]["template"]) if self.locales else ""

    @property
    def variables(self) -> list[str]:
        """The placeholder names of the first locale's text, in order."""
        return placeholders(self.body)

    def to_wire(self) -> dict[str, Any]:
        """The template object as the API returns it (absent optionals omitted)."""
        wire: dict[str, Any] = {
            "templateId": self.template_id,
            "serviceId": self.service_id,
            "senderInfoTrackingId": self.sender_id,
            "category": self.category,
            "status": self.status.value,
            "params": self.params,
            "locales": self.locales,
            "varExample": self.var_example,
        }
        if self.callback_url is not None:
            wire["callbackUrl"] = self.callback_url
        if self.moderation_notify_email is not None:
            wire["moderationNotifyEmail"] = self.moderation_notify_email
        wire["createdAt"] = self.created_at
        wire["updatedAt"] = self.updated_at
        if self.rejection_reason is not None:
            wire["rejectionReason"] = self.rejection_reason
        return wire


@attrs.define(slots=True)
class MessageRecord:
    """An accepted send (greenfield template send or legacy OTP) and its delivery state."""

    tracking_id: str
    kind: MessageKind
    account_id: str
    sender_id: str
    sender_name: str
    to: str
    template_id: str
    template_lang: str
    delivery_scope: str
    seq: int
    params: dict[str, Any]
    """The send's ``templateParams`` with ``pin`` masked."""
    created_at: str
    status: DeliveryStatus
    status_date: str
    price: float = 0.0
    callback_url: str | None = None
    ttl: int | None = None
    label: str | None = None
    session_message: bool | None = None
    multiple_singles_message_id: str | None = None
    inbound_url: str | None = None
    legacy_type: str | None = None
    outcome: DeliveryStatus = DeliveryStatus.DELIVERED
    """The final status this message is heading for."""
    deadline: float | None = None
    """Loop time at which the ttl runs out."""
    failure_reason: str | None = None
    """Why a message chosen to fail failed (shown in the inbox; not on the wire)."""
    history: list[tuple[DeliveryStatus, str]] = attrs.Factory(list)
    """Every status the message had, with its date, oldest first."""
    generation: int = 0
    """The delivery engine's generation at acceptance (a reset starts a new one)."""


class Store:
    """Everything the sandbox remembers, in memory."""

    def __init__(self) -> None:
        self.senders: dict[str, Sender] = {}
        self.templates: dict[str, TemplateRecord] = {}
        """By template id, in creation (so ``serviceId``) order."""
        self.messages: dict[str, MessageRecord] = {}
        """By tracking id, in acceptance order."""
        self.duplicate_seq_count = 0
        self._next_service_id = 1000
        self._last_assigned_seq = 0
        self._supplied_seqs: set[int] = set()

    def add_sender(self, sender: Sender) -> None:
        """Register a sender."""
        self.senders[sender.sender_id] = sender

    def next_service_id(self) -> int:
        """A new, increasing ``serviceId``."""
        self._next_service_id += 1
        return self._next_service_id

    def assign_seq(self) -> int:
        """A unique millisecond timestamp for a send without ``seq``."""
        seq = max(int(time.time() * 1000), self._last_assigned_seq + 1)
        self._last_assigned_seq = seq
        return seq

    def note_supplied_seq(self, seq: int) -> None:
        """Record an accepted caller-supplied ``seq``, counting a repeat as a duplicate."""
        if seq in self._supplied_seqs:
            self.duplicate_seq_count += 1
        else:
            self._supplied_seqs.add(seq)

    def add_message(self, record: MessageRecord) -> None:
        """Store an accepted message."""
        self.messages[record.tracking_id] = record

    def clear_messages(self) -> None:
        """Forget every accepted message and the ``seq`` bookkeeping (templates stay)."""
        self.messages.clear()
        self.duplicate_seq_count = 0
        self._supplied_seqs.clear()
