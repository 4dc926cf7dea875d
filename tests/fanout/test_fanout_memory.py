"""``send_many`` reads its input lazily and holds at most ``2 * concurrency`` inputs at a time.

The sends are ``FastMessages``' (answered at once, nothing else), so what is measured is the
fan-out itself. The million-message run takes a few seconds (``make bench`` has the timings and
the RSS figures).
"""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from fanout_helpers import Counted, FastMessages, leftover_tasks, message

MILLION = 1_000_000
SAME = message(1)  # one frozen message for every input: each send still gets its own seq copy


def same_message(i: int) -> object:
    return SAME


@pytest.mark.parametrize("concurrency", [1, 4, 100])
@pytest.mark.parametrize("kind", ["sync", "asynchronous"])
async def test_at_most_two_times_concurrency_inputs_are_held(concurrency: int, kind: str) -> None:
    fast = FastMessages()
    source = Counted(3000, same_message)
    outcomes = 0
    async for _ in fast.send_many(getattr(source, kind)(), concurrency=concurrency):
        source.seen()
        outcomes += 1
        if outcomes % 7 == 0:
            await asyncio.sleep(0)  # a consumer that yields to the workers now and then
    assert outcomes == 3000
    assert source.ahead <= 2 * concurrency  # in flight + the buffer of waiting outcomes
    assert source.ahead >= min(concurrency, 2)  # and it does read ahead


async def test_a_million_message_generator_is_pulled_only_as_far_as_consumed() -> None:
    fast = FastMessages(max_concurrency=50)
    source = Counted(MILLION, same_message)
    async for _ in fast.send_many(source.sync()):
        source.seen()
        if source.yielded == 20_000:
            break
    await asyncio.sleep(0)
    assert source.pulled <= 20_000 + 2 * 50
    assert fast.sends <= source.pulled
    assert source.ahead <= 2 * 50
    assert not leftover_tasks()


async def peak_growth(count: int) -> tuple[int, int]:
    """Peak traced memory above the start while ``count`` messages go through; and ``ahead``."""
    fast = FastMessages()
    source = Counted(count, same_message)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        async for _ in fast.send_many(source.sync()):
            source.seen()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert source.yielded == count
    return peak - base, source.ahead


async def test_memory_stays_flat_whatever_the_input_length() -> None:
    small, ahead_small = await peak_growth(20_000)
    large, ahead_large = await peak_growth(100_000)
    # Each message costs a copy with its seq and an outcome (~0.5 KiB together): keeping them
    # would take ~50 MiB for 100,000; the fan-out holds 200 at most (concurrency 100).
    assert small < 2 * 2**20
    assert large < 2 * 2**20
    assert abs(large - small) < 256 * 2**10
    assert max(ahead_small, ahead_large) <= 200


async def test_a_million_messages_go_through_in_flat_memory() -> None:
    fast = FastMessages()
    source = Counted(MILLION, same_message)
    async for _ in fast.send_many(source.sync()):
        source.seen()
    assert source.yielded == fast.sends == MILLION
    assert source.ahead <= 200
