"""One process of the shared-limit test: acquire a RedisRateLimiter as fast as it lets us.

``python redis_hammer.py URL KEY RATE SECONDS WAITERS CLOCK_OFFSET`` prints one JSON line: the
grant times (microseconds, on Redis's clock) of every acquire it made. With a CLOCK_OFFSET this
process's ``time.time`` and ``time.monotonic`` run that many seconds ahead, as on a machine
whose clock is wrong: the limit, computed on Redis's clock, must not care.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def offset_clocks(seconds: float) -> None:
    wall, mono = time.time, time.monotonic
    time.time = lambda: wall() + seconds  # type: ignore[assignment]
    time.monotonic = lambda: mono() + seconds  # type: ignore[assignment]


async def hammer(url: str, key: str, rate: float, seconds: float, waiters: int) -> list[int]:
    from redis.asyncio import Redis

    from routee_viber_async.integrations.redis import RedisRateLimiter

    redis = Redis.from_url(url)
    limiter = RedisRateLimiter(redis, key, rate)
    grants: list[int] = []
    # Start together: say we are ready, then wait for the test's start time (Redis's clock).
    await redis.incr(key + ":ready")
    popped = await redis.blpop([key + ":go"], timeout=60)
    assert popped is not None, "the test never said go"
    start_at = int(popped[1])
    now_s, now_us = await redis.time()
    await asyncio.sleep(max(0.0, (start_at - (now_s * 1_000_000 + now_us)) / 1e6))
    end_at = start_at + int(seconds * 1_000_000)

    async def waiter() -> None:
        while True:
            granted = await limiter.acquire_at()
            if granted >= end_at:
                return
            grants.append(granted)

    await asyncio.gather(*(waiter() for _ in range(waiters)))
    await redis.aclose()
    return grants


def main() -> None:
    url, key, rate, seconds, waiters, offset = sys.argv[1:7]
    if float(offset):
        offset_clocks(float(offset))
    grants = asyncio.run(hammer(url, key, float(rate), float(seconds), int(waiters)))
    print(json.dumps(grants))


if __name__ == "__main__":
    main()
