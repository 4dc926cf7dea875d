"""The inbox's state: messages as the handset shows them, their callbacks, and change signals.

The rendered text of a message (its template's locale with the send's parameters filled in,
pin included) lives here and only here: in memory, never logged, never written, never in a
repr. Everything else the inbox shows is read from the store's records when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .._masking import MASK, mask_url, query_value_pattern
from .._validation import fill_placeholders
from ._state import MessageRecord, TemplateRecord

__all__ = ["CallbackView", "Changes", "Inbox", "mask_callback_url", "render"]

# A path segment that looks like a shared secret (the token segment of
# ``/routee/delivery/{token}``, as webhook_routes suggests): long, URL-safe, with a digit or a
# capital letter, which a random token of 16 characters or more lacks almost never, and a
# path's words ("delivery-status-callback") usually do.
_SECRET_SEGMENT = re.compile(r"(?=[^/]*[0-9A-Z])[A-Za-z0-9_\-~.]{16,}")
# Query parameters that carry a secret, besides ``token`` (masked by mask_url).
_SECRET_QUERY = query_value_pattern(
    ["secret", "key", "api_key", "apikey", "signature", "sig", "auth", "access_token"]
)


def mask_callback_url(url: str) -> str:
    """``url`` with its userinfo, secret query values and token-like path segments masked."""
    masked = _SECRET_QUERY.sub(rf"\g<1>{MASK}", mask_url(url))
    scheme, sep, rest = masked.partition("://")
    if not sep:
        return masked
    authority, slash, tail = rest.partition("/")
    path, query_sep, query = tail.partition("?")
    segments = [
        MASK if _SECRET_SEGMENT.fullmatch(segment) else segment for segment in path.split("/")
    ]
    return f"{scheme}://{authority}{slash}{'/'.join(segments)}{query_sep}{query}"


def render(template: TemplateRecord, lang: str, params: Mapping[str, Any]) -> str:
    """The text the handset shows: the ``lang`` locale (else the first) with ``params`` in."""
    texts = {str(loc["lang"]): str(loc["template"]) for loc in template.locales}
    text = texts.get(lang, template.body)
    return fill_placeholders(text, params)


class Changes:
    """A version number that grows on every change the inbox shows, and its subscribers."""

    def __init__(self) -> None:
        self.version = 0
        self._subscribers: set[asyncio.Event] = set()

    def bump(self) -> None:
        """Note a change and wake every subscriber (cheap: it runs on every status change)."""
        self.version += 1
        for event in self._subscribers:
            event.set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        """An event set on each change, for as long as the ``with`` block lasts."""
        event = asyncio.Event()
        self._subscribers.add(event)
        try:
            yield event
        finally:
            self._subscribers.discard(event)


@attrs.frozen
class CallbackView:
    """One finished callback as the inbox shows it (URL masked, payload left out)."""

    kind: str
    url: str
    """The receiver's URL with its token masked."""
    event: str
    """The status the callback told of (delivery) or the template status (moderation)."""
    ok: bool
    status: int | None
    attempts: int
    latency_ms: float
    """Duration of the last attempt."""
    date: str

    def to_json(self) -> dict[str, Any]:
        """The JSON API's shape."""
        return {
            "kind": self.kind,
            "url": self.url,
            "event": self.event,
            "ok": self.ok,
            "httpStatus": self.status,
            "attempts": self.attempts,
            "latencyMs": round(self.latency_ms, 1),
            "date": self.date,
        }


class Inbox:
    """Rendered texts by tracking id, recipients' threads and callbacks by subject."""

    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self._texts: dict[str, str] = {}
        self._threads: dict[str, list[MessageRecord]] = {}
        """By recipient, the most recently written to last; each thread oldest first."""
        self._callbacks: dict[str, list[CallbackView]] = {}
        """By tracking id (delivery) or template id (moderation)."""

    def __repr__(self) -> str:
        return f"<Inbox: {len(self._texts)} messages, {len(self._threads)} recipients>"

    def add(self, record: MessageRecord, text: str) -> None:
        """Show an accepted message in its recipient's thread."""
        self._texts[record.tracking_id] = text
        thread = self._threads.pop(record.to, None)
        if thread is None:
            thread = []
        thread.append(record)
        self._threads[record.to] = thread  # re-inserted: the newest thread comes last
        self.changes.bump()

    def __contains__(self, to: object) -> bool:
        """True when ``to`` has a thread."""
        return to in self._threads

    def text(self, tracking_id: str) -> str:
        """The rendered text of a message ("" when unknown)."""
        return self._texts.get(tracking_id, "")

    def note_callback(self, subject: str, view: CallbackView) -> None:
        """Record a finished callback of a message or template."""
        self._callbacks.setdefault(subject, []).append(view)
        self.changes.bump()

    def callbacks(self, subject: str) -> list[CallbackView]:
        """The finished callbacks of a message or template, oldest first."""
        return self._callbacks.get(subject, [])

    @property
    def recipient_count(self) -> int:
        """How many recipients have a thread."""
        return len(self._threads)

    def recipients(self, offset: int, limit: int) -> list[str]:
        """A page of recipients, the most recently written to first."""
        newest_first = reversed(self._threads)
        for _ in range(offset):
            if next(newest_first, None) is None:
                return []
        page: list[str] = []
        for to in newest_first:
            if len(page) == limit:
                break
            page.append(to)
        return page

    def thread(self, to: str) -> list[MessageRecord]:
        """A recipient's messages, newest first (empty when none)."""
        return list(reversed(self._threads.get(to, [])))

    def clear(self) -> None:
        """Forget every message and callback."""
        self._texts.clear()
        self._threads.clear()
        self._callbacks.clear()
        self.changes.bump()
