"""``GET /viber/tracking/{trackingId}``, and waiting for a final status."""

from __future__ import annotations

import asyncio

from .._converter import from_wire
from .._errors import NotFoundError, WaitTimeoutError
from .._responses import TrackingRecord
from .._validation import check_positive_number, raise_if
from ._base import Resource, observed, path_segment

__all__ = ["TrackingResource"]


class TrackingResource(Resource):
    """Delivery status of sent messages."""

    __slots__ = ()

    @observed("tracking", "get")
    async def get(self, tracking_id: str) -> TrackingRecord:
        """The tracking record of one send."""
        data = (
            await self._transport.request(
                "GET", f"/viber/tracking/{path_segment(tracking_id, 'trackingId')}"
            )
        ).data
        return from_wire(data, TrackingRecord)

    @observed("tracking", "wait")
    async def wait(
        self,
        tracking_id: str,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109  (API.md: tracking.wait(id, *, timeout=...))
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        not_found_grace: float = 5.0,
    ) -> TrackingRecord:
        """Poll until the status is final (delivered, failed, expired, ...) and return the record.

        Polls start every ``poll_interval`` seconds and back off by half each time up to
        ``max_poll_interval``. A 404 within ``not_found_grace`` seconds of the first poll is
        taken as "not recorded yet". Raises :class:`WaitTimeoutError` after ``timeout``, also
        when a poll (with its retries) is still running then.
        """
        raise_if(
            check_positive_number(timeout, "timeout")
            + check_positive_number(poll_interval, "poll_interval")
            + check_positive_number(max_poll_interval, "max_poll_interval")
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        interval = poll_interval
        last_status: str | None = None
        while True:
            try:
                async with asyncio.timeout_at(max(deadline, loop.time())) as poll:
                    record = await self.get(tracking_id)
            except TimeoutError:
                if poll.expired():
                    raise WaitTimeoutError(tracking_id, timeout, last_status) from None
                raise
            except NotFoundError:
                if loop.time() - started > not_found_grace:
                    raise
            else:
                if record.is_final:
                    return record
                if record.status is not None and record.status.status is not None:
                    last_status = str(record.status.status)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(tracking_id, timeout, last_status)
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 1.5, max_poll_interval)
