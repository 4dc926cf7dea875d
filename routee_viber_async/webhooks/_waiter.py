"""Waiting for a message's final delivery status: by callback first, by polling as a fallback."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Protocol, TypeAlias

from .._enums import DeliveryStatus
from .._errors import WaitTimeoutError
from .._responses import DeliveryCallback, TrackingRecord

__all__ = ["DeliveryOutcome", "DeliveryWaiter", "SupportsTracking"]

#: What :meth:`DeliveryWaiter.wait` returns: the callback, or the polled tracking record.
DeliveryOutcome: TypeAlias = DeliveryCallback | TrackingRecord


class _TrackingWait(Protocol):
    async def wait(
        self,
        tracking_id: str,
        *,
        timeout: float = ...,  # noqa: ASYNC109  (client.tracking.wait's own signature)
        poll_interval: float = ...,
    ) -> TrackingRecord: ...


class SupportsTracking(Protocol):
    """Anything with ``tracking.wait(...)``: a ``RouteeViberClient``."""

    @property
    def tracking(self) -> _TrackingWait: ...


class DeliveryWaiter:
    """Resolves ``await waiter.wait(tracking_id)`` when that message's final callback arrives.

    Feed it every delivery callback (``webhook_router(on_delivery=waiter.feed)``). A callback
    with a final status (:attr:`DeliveryStatus.is_final`: delivered, seen, failed, ...) resolves
    every wait on its tracking id; non-final ones (``SENT``, ...) are only remembered as the last
    status seen. A final callback that arrives before anyone waits is kept in a bounded map of
    recent results (the ``max_recent`` most recent tracking ids), so a ``wait()`` called after a
    fast callback returns at once.

    With a client (given here or to :meth:`wait`), a wait that got no final callback within
    ``fallback_after`` seconds starts polling ``client.tracking.wait`` for the rest of its
    ``timeout``; whichever answers first wins. Without a client, or with ``fallback_after=None``,
    only callbacks resolve a wait.

    ``wait()`` is cancel-safe and leaves no future or task behind, however it ends. Use one
    waiter per event loop.
    """

    def __init__(
        self,
        client: SupportsTracking | None = None,
        *,
        fallback_after: float | None = 30.0,
        poll_interval: float = 0.5,
        max_recent: int = 10_000,
    ) -> None:
        if max_recent < 1:
            raise ValueError("max_recent must be at least 1")
        if fallback_after is not None and fallback_after < 0:
            raise ValueError("fallback_after must not be negative")
        self.client = client
        """The client whose ``tracking.wait`` is the fallback (settable, e.g. in a lifespan)."""
        self.fallback_after = fallback_after
        self.poll_interval = poll_interval
        self._max_recent = max_recent
        self._recent: OrderedDict[str, DeliveryOutcome] = OrderedDict()
        self._waiters: dict[str, set[asyncio.Future[DeliveryOutcome]]] = {}
        self._last_status: dict[str, DeliveryStatus] = {}

    # -- callbacks -------------------------------------------------------------------------

    def feed(self, callback: DeliveryCallback) -> bool:
        """Take one delivery callback; True when its status is final (and waits resolve).

        Synchronous and cheap, so it can be the router's ``on_delivery`` handler as it is.
        """
        status = callback.status.name
        if not status.is_final:
            if callback.tracking_id in self._waiters:
                self._last_status[callback.tracking_id] = status
            return False
        self._resolve(callback.tracking_id, callback)
        return True

    def get(self, tracking_id: str) -> DeliveryOutcome | None:
        """The final result already known for ``tracking_id``, without waiting."""
        return self._recent.get(tracking_id)

    def forget(self, tracking_id: str) -> None:
        """Drop the remembered result of ``tracking_id``."""
        self._recent.pop(tracking_id, None)

    @property
    def pending(self) -> int:
        """How many ``wait()`` calls are in progress."""
        return sum(len(futures) for futures in self._waiters.values())

    def _resolve(self, tracking_id: str, outcome: DeliveryOutcome) -> None:
        recent = self._recent
        recent[tracking_id] = outcome
        recent.move_to_end(tracking_id)
        while len(recent) > self._max_recent:
            recent.popitem(last=False)
        for future in self._waiters.get(tracking_id, ()):
            if not future.done():
                future.set_result(outcome)

    # -- waiting ---------------------------------------------------------------------------

    async def wait(
        self,
        tracking_id: str,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109  (the same shape as client.tracking.wait)
        client: SupportsTracking | None = None,
    ) -> DeliveryOutcome:
        """The final :class:`DeliveryCallback` of ``tracking_id``, or its polled record.

        Returns at once when the final callback already arrived. Raises
        :class:`~routee_viber_async.WaitTimeoutError` when neither a final callback nor (with a
        client) polling gave a final status within ``timeout`` seconds. An error of the
        fallback poll other than its own timeout (``NotFoundError``, ``AuthenticationError``,
        ...) is raised as it is.
        """
        known = self._recent.get(tracking_id)
        if known is not None:
            return known
        client = client if client is not None else self.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        future: asyncio.Future[DeliveryOutcome] = loop.create_future()
        self._waiters.setdefault(tracking_id, set()).add(future)
        poll: asyncio.Task[TrackingRecord] | None = None
        try:
            first = timeout
            if client is not None and self.fallback_after is not None:
                first = min(self.fallback_after, timeout)
            await asyncio.wait((future,), timeout=max(first, 0.0))
            if future.done():
                return future.result()
            remaining = deadline - loop.time()
            if client is None or self.fallback_after is None or remaining <= 0:
                raise self._timeout(tracking_id, timeout)
            poll = asyncio.create_task(
                client.tracking.wait(
                    tracking_id, timeout=remaining, poll_interval=self.poll_interval
                ),
                name=f"routee-delivery-poll-{tracking_id}",
            )
            await asyncio.wait(
                (future, poll), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if future.done():
                return future.result()
            if poll.done():
                try:
                    record = poll.result()
                except WaitTimeoutError as exc:
                    raise self._timeout(tracking_id, timeout, exc.last_status) from None
                self._resolve(tracking_id, record)
                return record
            raise self._timeout(tracking_id, timeout)
        finally:
            self._discard(tracking_id, future)
            if poll is not None:
                await _finish(poll)

    def _discard(self, tracking_id: str, future: asyncio.Future[DeliveryOutcome]) -> None:
        future.cancel()  # a no-op when it has a result
        futures = self._waiters.get(tracking_id)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._waiters[tracking_id]
                self._last_status.pop(tracking_id, None)

    def _timeout(
        self, tracking_id: str, timeout: float, last_status: str | None = None
    ) -> WaitTimeoutError:
        status = self._last_status.get(tracking_id)
        return WaitTimeoutError(tracking_id, timeout, str(status) if status else last_status)

    def __repr__(self) -> str:
        return f"<DeliveryWaiter pending={self.pending} recent={len(self._recent)}>"


async def _finish(task: asyncio.Task[TrackingRecord]) -> None:
    """Cancel ``task`` if it still runs, wait for it, and retrieve its exception."""
    if not task.done():
        task.cancel()
        await asyncio.wait((task,))
    if not task.cancelled():
        task.exception()  # retrieved: never "Task exception was never retrieved"
