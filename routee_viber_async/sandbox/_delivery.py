"""Delivery: each accepted message moves QUEUED → SENT → its outcome, with callbacks.

The outcome (DELIVERED, FAILED or EXPIRED) is drawn at acceptance from ``failed_share`` and
``expired_share``. A message with a ``ttl`` that runs out before its final step ends EXPIRED at
that moment. Every status change after QUEUED POSTs a delivery callback (seed 001's shape) to
the send's ``callbackUrl``. Steps run on the shared scheduler: no task per message.
"""

from __future__ import annotations

import asyncio
import random

from .._enums import DeliveryStatus
from ._callbacks import CallbackDispatcher
from ._scheduler import Scheduler
from ._state import MessageRecord
from ._views import delivery_callback
from ._wire import iso_now

__all__ = ["DeliveryEngine"]


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
    ) -> None:
        self._scheduler = scheduler
        self._callbacks = callbacks
        self._rng = rng
        self._step_delay = step_delay
        self._failed_share = failed_share
        self._expired_share = expired_share
        self._ttl_scale = ttl_scale
        self.status_changes = 0
        """Status changes after QUEUED, in all."""

    def accept(self, record: MessageRecord) -> None:
        """Start delivering a message stored as QUEUED."""
        point = self._rng.random() if self._failed_share or self._expired_share else 1.0
        if point < self._failed_share:
            record.outcome = DeliveryStatus.FAILED
        elif point < self._failed_share + self._expired_share:
            record.outcome = DeliveryStatus.EXPIRED
        else:
            record.outcome = DeliveryStatus.DELIVERED
        if record.ttl is not None:
            now = asyncio.get_running_loop().time()
            record.deadline = now + record.ttl * self._ttl_scale
        self._schedule(record)

    def _schedule(self, record: MessageRecord) -> None:
        deadline = record.deadline
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= self._step_delay:
                self._scheduler.call_later(left, self._expire, record)
                return
        self._scheduler.call_later(self._step_delay, self._step, record)

    def _step(self, record: MessageRecord) -> None:
        if record.status == DeliveryStatus.QUEUED:
            self._change(record, DeliveryStatus.SENT)
            self._schedule(record)
        elif record.status == DeliveryStatus.SENT:
            self._change(record, record.outcome)

    def _expire(self, record: MessageRecord) -> None:
        if not record.status.is_final:
            self._change(record, DeliveryStatus.EXPIRED)

    def _change(self, record: MessageRecord, status: DeliveryStatus) -> None:
        record.status = status
        record.status_date = iso_now()
        self.status_changes += 1
        if record.callback_url:
            self._callbacks.post("delivery", record.callback_url, delivery_callback(record))
