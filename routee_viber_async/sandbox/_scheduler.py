"""One timer for every delayed action of the sandbox (moderation, delivery steps, retries).

A heap of ``(when, order, callback, arg)`` and a single event-loop timer armed for the earliest
entry: scheduling is O(log n) with no task per message, and closing drops everything at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["Scheduler"]

logger = logging.getLogger("routee_viber_async.sandbox")

_SLACK = 0.001

_Entry = tuple[float, int, Callable[[Any], None], Any]


class Scheduler:
    """Runs plain callbacks later on the running loop, from one timer handle."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._closed = False

    def __len__(self) -> int:
        """How many actions are waiting."""
        return len(self._heap)

    def call_later(self, delay: float, callback: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``callback(arg)`` after ``delay`` seconds (never, once closed)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        heapq.heappush(self._heap, (when, next(self._order), callback, arg))
        if self._timer is None or when < self._timer_when:
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap and not self._closed:
            self._timer_when = self._heap[0][0]
            self._timer = loop.call_at(self._timer_when, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        # The loop may run a timer up to one clock resolution early: treat that as due.
        due = loop.time() + _SLACK
        heap = self._heap
        while heap and heap[0][0] <= due and not self._closed:
            _, _, callback, arg = heapq.heappop(heap)
            try:
                callback(arg)
            except Exception:
                logger.exception("sandbox: a scheduled action failed")
        self._arm(loop)

    def close(self) -> None:
        """Drop every waiting action and the timer."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
