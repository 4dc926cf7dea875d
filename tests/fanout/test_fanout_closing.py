"""Leaving ``send_many`` early: ``break``, ``aclose()``, ``async with``, cancellation.

Each must stop the pulls (the input is not read further), cancel the sends in flight (their
slots released) and leave no task behind.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from typing import Any

import pytest
from fanout_helpers import (
    Counted,
    StubTransport,
    index_of,
    leftover_tasks,
    resource,
    settle,
    until_still,
)

from routee_viber_async import SendOutcome

CONCURRENCY = 4


class Stuck:
    """Sends of even inputs answer at once; the others hang until cancelled."""

    def __init__(self) -> None:
        self.transport = StubTransport(behave=self.behave)
        self.source = Counted(1000)
        self.all_stuck = asyncio.Event()

    async def behave(self, body: Mapping[str, Any]) -> None:
        if int(body["to"][5:]) % 2:
            if self.transport.in_flight == CONCURRENCY:
                self.all_stuck.set()
            await asyncio.Event().wait()

    def send_many(self) -> Any:
        return resource(self.transport).send_many(self.source.sync(), concurrency=CONCURRENCY)

    async def assert_stopped(self, pulled: int, *, cancelled: int | None = None) -> None:
        """No pull since ``pulled``, nothing in flight, no task left, no send started later."""
        transport = self.transport
        assert self.source.pulled == pulled
        assert transport.in_flight == 0
        if cancelled is not None:
            assert transport.cancelled == cancelled
        assert transport.started == transport.finished + transport.cancelled
        assert not leftover_tasks()
        started = transport.started
        await asyncio.sleep(0.02)
        assert self.source.pulled == pulled
        assert transport.started == started


async def test_break_stops_at_once() -> None:
    stuck = Stuck()
    async for outcome in stuck.send_many():
        assert outcome.ok
        assert index_of(outcome.request) % 2 == 0
        break
    pulled = stuck.source.pulled
    in_flight = stuck.transport.in_flight
    assert in_flight > 0  # sends were hanging when the loop was left
    await settle()  # the cancellations are delivered at the next turn of the loop
    await stuck.assert_stopped(pulled, cancelled=in_flight)


async def test_break_stops_without_any_await_in_between() -> None:
    """Even before the cancellations land, no worker pulls again."""
    stuck = Stuck()
    async for _ in stuck.send_many():
        break
    pulled = stuck.source.pulled
    await asyncio.sleep(0)
    assert stuck.source.pulled == pulled


async def test_break_from_an_async_input() -> None:
    stuck = Stuck()
    iterator = resource(stuck.transport).send_many(
        stuck.source.asynchronous(), concurrency=CONCURRENCY
    )
    async for _ in iterator:
        break
    del iterator
    pulled = stuck.source.pulled
    await settle()
    await stuck.assert_stopped(pulled)


async def test_aclose_stops_and_waits_for_every_worker() -> None:
    stuck = Stuck()
    iterator = stuck.send_many()
    first = await anext(iterator)
    assert isinstance(first, SendOutcome)
    in_flight = stuck.transport.in_flight
    assert in_flight > 0

    await iterator.aclose()

    # No settling needed: aclose() returns once every worker has ended.
    await stuck.assert_stopped(stuck.source.pulled, cancelled=in_flight)
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)
    await iterator.aclose()  # idempotent


async def test_async_with_closes_on_exit_even_when_the_iterator_is_kept() -> None:
    stuck = Stuck()
    async with stuck.send_many() as outcomes:
        async for _ in outcomes:
            break
        in_flight = stuck.transport.in_flight
    await stuck.assert_stopped(stuck.source.pulled, cancelled=in_flight)
    assert outcomes is not None  # still referenced, yet stopped


async def test_cancelling_the_consumer_stops_and_waits_for_every_worker() -> None:
    stuck = Stuck()
    seen: list[SendOutcome] = []

    async def consume() -> None:
        async for outcome in stuck.send_many():
            seen.append(outcome)

    task = asyncio.create_task(consume())
    async with asyncio.timeout(2):
        await stuck.all_stuck.wait()  # every worker on a hanging send
    assert seen  # the quick ones came through
    in_flight = stuck.transport.in_flight

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await stuck.assert_stopped(stuck.source.pulled, cancelled=in_flight)


async def test_a_timeout_around_the_loop_stops_it() -> None:
    stuck = Stuck()

    async def consume_for_a_while() -> None:
        async with asyncio.timeout(0.05):
            async for _ in stuck.send_many():
                pass

    with pytest.raises(TimeoutError):
        await consume_for_a_while()
    await stuck.assert_stopped(stuck.source.pulled)


async def test_a_kept_iterator_pauses_when_its_buffer_is_full_and_stops_when_freed() -> None:
    """``break`` cannot be seen while the iterator is referenced (it may be resumed), so the
    workers go on only until ``concurrency`` outcomes wait; freeing the iterator stops them."""
    transport = StubTransport()  # every send answers at once
    source = Counted(1000)
    iterator = resource(transport).send_many(source.sync(), concurrency=CONCURRENCY)
    async for _ in iterator:
        source.seen()
        break
    await until_still(lambda: source.pulled)
    assert source.pulled - source.yielded <= 2 * CONCURRENCY
    assert source.pulled < 20
    pulled = source.pulled
    assert [o.index async for o in iterator][:1] == [1]  # it can be resumed ...
    assert source.pulled == 1000

    source = Counted(1000)
    iterator = resource(transport).send_many(source.sync(), concurrency=CONCURRENCY)
    await anext(iterator)
    await until_still(lambda: source.pulled)
    assert source.pulled == pulled
    del iterator  # ... or dropped, which stops it
    gc.collect()
    await settle()
    assert not leftover_tasks()


async def test_an_iterator_dropped_in_a_reference_cycle_is_stopped_by_the_collector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Holder:
        pass

    stuck = Stuck()
    holder = Holder()
    holder.me = holder  # type: ignore[attr-defined]
    holder.outcomes = stuck.send_many()  # type: ignore[attr-defined]
    await anext(holder.outcomes)  # type: ignore[attr-defined]
    await asyncio.sleep(0.01)
    in_flight = stuck.transport.in_flight
    del holder
    gc.collect()
    await settle()
    await stuck.assert_stopped(stuck.source.pulled, cancelled=in_flight)
    gc.collect()
    assert "destroyed but it is pending" not in caplog.text
