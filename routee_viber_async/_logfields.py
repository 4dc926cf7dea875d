"""Fields added to the SDK's log records during a call (a send's ``seq`` and ``tracking_id``).

The resource that makes a call puts its fields in :data:`call_log_fields` (a context variable,
so each task has its own); a filter on the ``routee_viber_async`` logger copies them onto every
record logged meanwhile, as ``extra`` would. A format can then print ``%(seq)s`` and
``%(tracking_id)s`` (give them defaults: records outside a send do not have them).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

__all__ = ["CallLogFields", "call_log_fields", "logger"]

logger = logging.getLogger("routee_viber_async")

#: The fields of the call the current task is making, if any.
call_log_fields: ContextVar[dict[str, object] | None] = ContextVar(
    "routee_call_log_fields", default=None
)


class CallLogFields(logging.Filter):
    """Adds the current call's fields to each record (never replacing a record's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = call_log_fields.get()
        if fields:
            attributes = record.__dict__
            for name, value in fields.items():
                attributes.setdefault(name, value)
        return True


if not any(isinstance(f, CallLogFields) for f in logger.filters):
    logger.addFilter(CallLogFields())
