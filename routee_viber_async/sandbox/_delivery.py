"""Delivery: each accepted message moves QUEUED → SENT → its outcome, with callbacks.

The outcome (DELIVERED, FAILED or EXPIRED) is drawn at acceptance from ``failed_share`` and
``expired_share``, unless a fate was chosen (:class:`Fates`: for one recipient, or for the next
messages), which may also be SEEN (after DELIVERED) or "never delivered" (it stays SENT). A
message with a ``ttl`` that runs out before its final step ends EXPIRED at that moment. Every
status change after QUEUED POSTs a delivery callback (seed 001's shape) to the send's
``callbackUrl``. Steps run on the shared scheduler: no task per message.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import attrs

from .._enums import DeliveryStatus
from ._callbacks import CallbackDispatcher
from ._scheduler import Scheduler
from ._state import MessageRecord
from ._views import delivery_callback
from ._wire import iso_now

__all__ = ["DeliveryEngine", "Fate", "FateChoice", "Fates"]


class Fate(StrEnum):
    """What happens to a message, chosen ahead of its send."""

    DELIVERED = "delivered"
    SEEN = "seen"
    """DELIVERED, then SEEN."""
    FAILED = "failed"
    EXPIRED = "expired"
    NEVER_DELIVERED = "never_delivered"
    """SENT, and nothing more (unless its ttl runs out)."""

    @property
    def outcome(self) -> DeliveryStatus:
        """The final status (SENT for never delivered)."""
        return _OUTCOMES[self]


_OUTCOMES = {
    Fate.DELIVERED: DeliveryStatus.DELIVERED,
    Fate.SEEN: DeliveryStatus.SEEN,
    Fate.FAILED: DeliveryStatus.FAILED,
    Fate.EXPIRED: DeliveryStatus.EXPIRED,
    Fate.NEVER_DELIVERED: DeliveryStatus.SENT,
}


@attrs.frozen
class FateChoice:
    """A fate and, for a failure, its reason."""

    fate: Fate = attrs.field(converter=Fate)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON API's shape."""
        return {"fate": self.fate.value, "reason": self.reason}


class Fates:
    """Fates chosen for recipients (until cleared) and for the next messages (once each)."""

    def __init__(self) -> None:
        self.by_recipient: dict[str, FateChoice] = {}
        self.upcoming: deque[FateChoice] = deque()

    def for_recipient(self, to: str, choice: FateChoice | None) -> None:
        """Give every later message to ``to`` this fate (None: the usual draw again)."""
        if choice is None:
            self.by_recipient.pop(to, None)
        else:
            self.by_recipient[to] = choice

    def for_next(self, choice: FateChoice, count: int = 1) -> None:
        """Give the next ``count`` messages (to recipients without a fate of their own) it."""
        self.upcoming.extend([choice] * count)

    def take(self, to: str) -> FateChoice | None:
        """The fate of a message to ``to`` being accepted, if one was chosen."""
        choice = self.by_recipient.get(to)
        if choice is None and self.upcoming:
            choice = self.upcoming.popleft()
        return choice

    def clear(self) -> None:
        """Forget every chosen fate."""
        self.by_recipient.clear()
        self.upcoming.clear()


class DeliveryEngine:
    """Moves accepted messages through their statuses on the scheduler."""

    def __init__(
        self,
        scheduler: Scheduler,
        callbacks: CallbackDispatcher,
        rng: random.Random,
        *,
        step_delay: float,
        failed_share: float,
        expired_share: float,
        ttl_scale: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._scheduler = scheduler
        self._callbacks = callbacks
        self._rng = rng
        self._step_delay = step_delay
        self._failed_share = failed_share
        self._expired_share = expired_share
        self._ttl_scale = ttl_scale
        self._on_change = on_change
        self.fates = Fates()
        self.generation = 0
        """Grows on each reset: messages of an earlier generation move no more."""
        self.status_changes = 0
        """Status changes after QUEUED, in all."""

    def accept(self, record: MessageRecord) -> None:
        """Start delivering a message stored as QUEUED."""
        record.generation = self.generation
        record.history.append((record.status, record.status_date))
        choice = self.fates.take(record.to)
        if choice is not None:
            record.outcome = choice.fate.outcome
            if choice.fate is Fate.FAILED:
                record.failure_reason = choice.reason
        else:
            self._draw_outcome(record)
        if record.ttl is not None:
            now = asyncio.get_running_loop().time()
            record.deadline = now + record.ttl * self._ttl_scale
        self._schedule(record)

    def reset(self) -> None:
        """Stop moving every message accepted so far, and forget the chosen fates."""
        self.generation += 1
        self.fates.clear()

    def _draw_outcome(self, record: MessageRecord) -> None:
        point = self._rng.random() if self._failed_share or self._expired_share else 1.0
        if point < self._failed_share:
            record.outcome = DeliveryStatus.FAILED
        elif point < self._failed_share + self._expired_share:
            record.outcome = DeliveryStatus.EXPIRED
        else:
            record.outcome = DeliveryStatus.DELIVERED

    def _schedule(self, record: MessageRecord) -> None:
        deadline = record.deadline
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= self._step_delay:
                self._scheduler.call_later(left, self._expire, record)
                return
        self._scheduler.call_later(self._step_delay, self._step, record)

    def _step(self, record: MessageRecord) -> None:
        if record.generation != self.generation:
            return  # reset since
        status, outcome = record.status, record.outcome
        if status == DeliveryStatus.QUEUED:
            self._change(record, DeliveryStatus.SENT)
            if outcome != DeliveryStatus.SENT:  # not "never delivered"
                self._schedule(record)
        elif status == DeliveryStatus.SENT and outcome == DeliveryStatus.SEEN:
            self._change(record, DeliveryStatus.DELIVERED)
            self._schedule(record)
        elif status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
            self._change(record, outcome)

    def _expire(self, record: MessageRecord) -> None:
        if record.generation == self.generation and not record.status.is_final:
            self._change(record, DeliveryStatus.EXPIRED)

    def _change(self, record: MessageRecord, status: DeliveryStatus) -> None:
        record.status = status
        record.status_date = iso_now()
        record.history.append((status, record.status_date))
        self.status_changes += 1
        if record.callback_url:
            self._callbacks.post(
                "delivery", record.callback_url, delivery_callback(record), record.tracking_id
            )
        self._on_change()
