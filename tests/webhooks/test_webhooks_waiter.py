"""DeliveryWaiter: resolved by a final callback, before or after wait(); polling as a fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from routee_viber_async import (
    DeliveryCallback,
    NotFoundError,
    TrackingRecord,
    TrackingStatus,
    WaitTimeoutError,
)
from routee_viber_async.webhooks import DeliveryWaiter, parse_delivery_callback


def callback(tracking_id: str, status: str) -> DeliveryCallback:
    return parse_delivery_callback({"trackingId": tracking_id, "status": {"name": status}})


def record(tracking_id: str, status: str = "DELIVERED") -> TrackingRecord:
    return TrackingRecord(tracking_id, status=TrackingStatus(status=status))  # type: ignore[arg-type]


class FakeTracking:
    """``client.tracking`` with a scripted ``wait``."""

    def __init__(self, result: TrackingRecord | BaseException | None = None) -> None:
        self.result = result  # None: never answers (until cancelled)
        self.calls: list[tuple[str, float, float]] = []
        self.cancelled = 0

    async def wait(
        self,
        tracking_id: str,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109
        poll_interval: float = 0.5,
    ) -> TrackingRecord:
        self.calls.append((tracking_id, timeout, poll_interval))
        try:
            if self.result is None:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(self.result, BaseException):
            raise self.result
        assert self.result is not None
        return self.result


class FakeClient:
    def __init__(self, result: TrackingRecord | BaseException | None = None) -> None:
        self.tracking = FakeTracking(result)


def assert_clean(waiter: DeliveryWaiter) -> None:
    assert waiter.pending == 0
    assert waiter._waiters == {}
    assert waiter._last_status == {}
    current = asyncio.current_task()
    assert {t for t in asyncio.all_tasks() if t is not current} == set()


async def test_resolved_by_a_callback_fed_while_waiting() -> None:
    waiter = DeliveryWaiter()
    task = asyncio.create_task(waiter.wait("t-1", timeout=5))
    await asyncio.sleep(0)
    assert waiter.pending == 1
    final = callback("t-1", "DELIVERED")
    assert waiter.feed(callback("t-2", "DELIVERED")) is True  # another message
    assert waiter.feed(final) is True
    assert await task is final
    assert_clean(waiter)


async def test_a_callback_that_arrived_before_wait_is_not_lost() -> None:
    waiter = DeliveryWaiter()
    final = callback("t-1", "FAILED")
    waiter.feed(final)
    assert waiter.get("t-1") is final
    assert await waiter.wait("t-1", timeout=0.01) is final
    assert await waiter.wait("t-1", timeout=0.01) is final  # and stays for a while
    assert_clean(waiter)


async def test_non_final_callbacks_do_not_resolve() -> None:
    waiter = DeliveryWaiter()
    task = asyncio.create_task(waiter.wait("t-1", timeout=5))
    await asyncio.sleep(0)
    assert waiter.feed(callback("t-1", "QUEUED")) is False
    assert waiter.feed(callback("t-1", "SENT")) is False
    assert waiter.feed(callback("t-1", "SOMETHING_NEW")) is False  # unknown: not final
    await asyncio.sleep(0.01)
    assert not task.done()
    final = callback("t-1", "SEEN")
    waiter.feed(final)
    assert await task is final


async def test_timeout_without_a_client() -> None:
    waiter = DeliveryWaiter(fallback_after=0.0)  # no client: nothing to fall back to
    task = asyncio.create_task(waiter.wait("t-1", timeout=0.05))
    await asyncio.sleep(0)
    waiter.feed(callback("t-1", "SENT"))
    with pytest.raises(WaitTimeoutError) as exc:
        await task
    assert exc.value.tracking_id == "t-1"
    assert exc.value.timeout == 0.05
    assert exc.value.last_status == "SENT"
    assert isinstance(exc.value, TimeoutError)
    assert_clean(waiter)
    waiter.feed(callback("t-1", "DELIVERED"))  # late: remembered, nobody to resolve
    assert waiter.get("t-1") is not None


async def test_several_waits_on_one_tracking_id() -> None:
    waiter = DeliveryWaiter()
    tasks = [asyncio.create_task(waiter.wait("t-1", timeout=5)) for _ in range(3)]
    await asyncio.sleep(0)
    assert waiter.pending == 3
    final = callback("t-1", "EXPIRED")
    waiter.feed(final)
    assert await asyncio.gather(*tasks) == [final, final, final]
    assert_clean(waiter)


async def test_cancelling_a_wait_leaves_nothing_behind() -> None:
    client = FakeClient()
    waiter = DeliveryWaiter(client, fallback_after=0.0)
    task = asyncio.create_task(waiter.wait("t-1", timeout=5))
    await asyncio.sleep(0.01)
    assert client.tracking.calls  # the fallback poll is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.tracking.cancelled == 1
    assert_clean(waiter)
    waiter.feed(callback("t-1", "DELIVERED"))  # a late callback is still remembered
    assert await waiter.wait("t-1", timeout=0) == callback("t-1", "DELIVERED")


async def test_a_wait_under_asyncio_timeout_is_cancel_safe() -> None:
    waiter = DeliveryWaiter(FakeClient(), fallback_after=0.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await waiter.wait("t-1", timeout=5)
    assert_clean(waiter)


async def test_the_recent_map_is_bounded() -> None:
    waiter = DeliveryWaiter(max_recent=2)
    for n in range(3):
        waiter.feed(callback(f"t-{n}", "DELIVERED"))
    assert waiter.get("t-0") is None
    assert waiter.get("t-1") is not None
    assert waiter.get("t-2") is not None
    waiter.forget("t-2")
    assert waiter.get("t-2") is None


# -- the polling fallback ----------------------------------------------------------------------


async def test_falls_back_to_polling_when_no_callback_comes() -> None:
    polled = record("t-1")
    client = FakeClient(polled)
    waiter = DeliveryWaiter(client, fallback_after=0.02, poll_interval=0.1)
    assert await waiter.wait("t-1", timeout=5) is polled
    [(tracking_id, timeout, poll_interval)] = client.tracking.calls
    assert tracking_id == "t-1"
    assert 4.9 < timeout <= 4.98  # the rest of the wait's own timeout
    assert poll_interval == 0.1
    assert waiter.get("t-1") is polled
    assert_clean(waiter)


async def test_no_polling_when_the_callback_comes_in_time() -> None:
    client = FakeClient(record("t-1"))
    waiter = DeliveryWaiter(client, fallback_after=5.0)
    task = asyncio.create_task(waiter.wait("t-1", timeout=10))
    await asyncio.sleep(0.01)
    final = callback("t-1", "DELIVERED")
    waiter.feed(final)
    assert await task is final
    assert client.tracking.calls == []
    assert_clean(waiter)


async def test_a_callback_during_polling_wins_and_stops_the_poll() -> None:
    client = FakeClient()  # polling never ends by itself
    waiter = DeliveryWaiter(client, fallback_after=0.0)
    task = asyncio.create_task(waiter.wait("t-1", timeout=5))
    await asyncio.sleep(0.01)
    final = callback("t-1", "DELIVERED")
    waiter.feed(final)
    assert await task is final
    assert client.tracking.cancelled == 1
    assert_clean(waiter)


async def test_a_client_given_to_wait_overrides_the_waiter_s() -> None:
    polled = record("t-1", "UNDELIVERED")
    own = FakeClient(record("t-1"))
    waiter = DeliveryWaiter(own, fallback_after=0.0)
    other = FakeClient(polled)
    assert await waiter.wait("t-1", timeout=1, client=other) is polled
    assert own.tracking.calls == []


async def test_polling_timeout_becomes_the_wait_s_timeout() -> None:
    client = FakeClient(WaitTimeoutError("t-1", 0.04, "SENT"))
    waiter = DeliveryWaiter(client, fallback_after=0.01)
    with pytest.raises(WaitTimeoutError) as exc:
        await waiter.wait("t-1", timeout=0.05)
    assert exc.value.timeout == 0.05
    assert exc.value.last_status == "SENT"
    assert_clean(waiter)


async def test_a_poll_that_never_answers_ends_at_the_timeout() -> None:
    client = FakeClient()
    waiter = DeliveryWaiter(client, fallback_after=0.01)
    with pytest.raises(WaitTimeoutError):
        await waiter.wait("t-1", timeout=0.05)
    assert client.tracking.cancelled == 1
    assert_clean(waiter)


async def test_other_polling_errors_are_raised() -> None:
    error = NotFoundError("unknown tracking id", status=404)
    waiter = DeliveryWaiter(FakeClient(error), fallback_after=0.0)
    with pytest.raises(NotFoundError):
        await waiter.wait("t-1", timeout=1)
    assert_clean(waiter)


async def test_fallback_after_none_never_polls() -> None:
    client = FakeClient(record("t-1"))
    waiter = DeliveryWaiter(client, fallback_after=None)
    with pytest.raises(WaitTimeoutError):
        await waiter.wait("t-1", timeout=0.03)
    assert client.tracking.calls == []


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_recent"):
        DeliveryWaiter(max_recent=0)
    with pytest.raises(ValueError, match="fallback_after"):
        DeliveryWaiter(fallback_after=-1)


def test_repr() -> None:
    waiter: Any = DeliveryWaiter()
    waiter.feed(callback("t-1", "DELIVERED"))
    assert repr(waiter) == "<DeliveryWaiter pending=0 recent=1>"
