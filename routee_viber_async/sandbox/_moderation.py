"""Template moderation: the automatic verdict, manual decisions and the moderation callback.

A new template is PENDING_MODERATION; after ``moderation_delay`` it becomes APPROVED, or
REJECTED when a locale's text holds URL-like content (the same detector as the send-time
PARAM_CONTAINS_URL check). Each decision POSTs seed 001's moderation payload to the template's
``callbackUrl`` (as stored at decision time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._enums import TemplateStatus
from .._validation import Code, check_param_value
from ._callbacks import CallbackDispatcher
from ._scheduler import Scheduler
from ._state import Store, TemplateRecord
from ._wire import iso_now

__all__ = ["URL_REJECTION_REASON", "Moderator", "automatic_verdict", "moderation_payload"]

URL_REJECTION_REASON = (
    "Template text contains a URL or domain; transactional templates may not carry links."
)

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")


def automatic_verdict(template: TemplateRecord) -> str | None:
    """The rejection reason of the automatic moderation, or None to approve."""
    for locale in template.locales:
        text = _PLACEHOLDER.sub(" ", str(locale["template"]))
        issues = check_param_value("template", text)
        if any(issue.code == Code.PARAM_CONTAINS_URL for issue in issues):
            return URL_REJECTION_REASON
    return None


def moderation_payload(template: TemplateRecord) -> dict[str, Any]:
    """Seed 001's moderation callback body."""
    payload: dict[str, Any] = {
        "templateId": template.template_id,
        "templateStatus": template.status.value,
        "templateBody": template.body,
        "variables": template.variables,
    }
    if template.rejection_reason is not None:
        payload["rejectionReason"] = template.rejection_reason
    return payload


class Moderator:
    """Decides templates (on a timer or on demand) and sends the moderation callbacks."""

    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        callbacks: CallbackDispatcher,
        delay: float | None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._callbacks = callbacks
        self._delay = delay
        self._on_change = on_change

    @property
    def manual(self) -> bool:
        """True when templates are decided only by hand (approve/reject)."""
        return self._delay is None

    def submit(self, template: TemplateRecord) -> None:
        """Queue a new template for the automatic decision (unless moderation is manual)."""
        if self._delay is not None:
            self._scheduler.call_later(
                self._delay, self._decide_automatically, template.template_id
            )

    def _decide_automatically(self, template_id: str) -> None:
        template = self._store.templates.get(template_id)
        if template is None or template.status != TemplateStatus.PENDING_MODERATION:
            return  # deleted, or decided by hand meanwhile
        reason = automatic_verdict(template)
        if reason is None:
            self.decide(template, TemplateStatus.APPROVED)
        else:
            self.decide(template, TemplateStatus.REJECTED, reason)

    def decide(
        self, template: TemplateRecord, status: TemplateStatus, reason: str | None = None
    ) -> None:
        """Set the moderation outcome and POST the moderation callback if one is set."""
        template.status = status
        template.rejection_reason = reason if status == TemplateStatus.REJECTED else None
        template.updated_at = iso_now()
        if template.callback_url:
            self._callbacks.post(
                "moderation",
                template.callback_url,
                moderation_payload(template),
                template.template_id,
            )
        self._on_change()
