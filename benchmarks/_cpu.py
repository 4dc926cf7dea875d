"""Benchmarks 1 and 4: client CPU per send, the SDK against the hand-written loop.

Both send the same ``n`` messages at concurrency ``C`` (``asyncio.gather`` over all of them,
the bound doing the queueing) to the same server process, in interleaved rounds: SDK then raw
in even rounds, raw then SDK in odd ones, so that drift (the other core's load, the allocator's
state) falls on both alike. Each round measures this process's CPU time (``time.process_time``)
and the wall time; the figures are medians over the rounds, and the ratio is the median of the
per-round ratios.

With ``flaky=True`` both send to the server's flaky path, where every 20th answer is a 503, and
both retry it: the SDK through its :class:`RetryPolicy` (tenacity), the raw loop by hand, with
the same backoff ceilings (milliseconds, so that the rounds do not wait on sleeps).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from statistics import quantiles

import attrs

from routee_viber_async import ClientCredentials, RetryPolicy, RouteeViberClient

from ._common import Server, cpu_seconds, median, message, payload, quiet
from ._raw import RawClient
from ._server import APP_ID, APP_SECRET

__all__ = ["CpuResult", "run_cpu"]

#: Backoff ceilings of the flaky runs, the same for the SDK and the raw loop (seconds).
FLAKY_INITIAL_BACKOFF = 0.002
FLAKY_MAX_BACKOFF = 0.02


@attrs.frozen
class CpuResult:
    """Medians over the rounds (µs of client CPU per send; sends per second)."""

    n: int
    rounds: int
    concurrency: int
    flaky: bool
    sdk_us: float
    raw_us: float
    ratio: float
    sdk_rate: float
    raw_rate: float
    rate_ratio: float
    ratio_q1: float
    ratio_q3: float
    sdk_rounds_us: tuple[float, ...]
    raw_rounds_us: tuple[float, ...]


async def _measure(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    with quiet():
        cpu0 = cpu_seconds()
        wall0 = time.perf_counter()
        await fn()
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
    return cpu / n * 1e6, n / wall


async def run_cpu(
    server: Server, *, n: int, rounds: int, concurrency: int, flaky: bool = False
) -> CpuResult:
    """Run the interleaved rounds and return the medians."""
    if flaky:
        policy = RetryPolicy(
            initial_backoff=FLAKY_INITIAL_BACKOFF, max_backoff=FLAKY_MAX_BACKOFF, budget=None
        )
        base_url, send_url = server.flaky_base_url, server.flaky_send_url
    else:
        policy = RetryPolicy()
        base_url, send_url = server.base_url, server.send_url
    messages = [message(i) for i in range(n)]
    payloads = [payload(i) for i in range(n)]
    async with (
        RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=base_url,
            auth_url=server.auth_url,
            max_concurrency=concurrency,
            retry=policy,
        ) as client,
        RawClient(
            send_url=send_url,
            auth_url=server.auth_url,
            concurrency=concurrency,
            initial_backoff=FLAKY_INITIAL_BACKOFF,
            max_backoff=FLAKY_MAX_BACKOFF,
        ) as raw,
    ):
        send = client.messages.send
        raw_send = raw.send_with_retry if flaky else raw.send

        async def sdk_round() -> None:
            await asyncio.gather(*[send(m) for m in messages])

        async def raw_round() -> None:
            await asyncio.gather(*[raw_send(p) for p in payloads])

        # Warm-up: connections open, code paths hot, the token fetched.
        await sdk_round()
        await raw_round()
        sdk_us: list[float] = []
        raw_us: list[float] = []
        sdk_rate: list[float] = []
        raw_rate: list[float] = []
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for is_sdk in order:
                us, rate = await _measure(sdk_round if is_sdk else raw_round, n)
                (sdk_us if is_sdk else raw_us).append(us)
                (sdk_rate if is_sdk else raw_rate).append(rate)
    ratios = [s / r for s, r in zip(sdk_us, raw_us, strict=True)]
    rate_ratios = [s / r for s, r in zip(sdk_rate, raw_rate, strict=True)]
    return CpuResult(
        n=n,
        rounds=rounds,
        concurrency=concurrency,
        flaky=flaky,
        sdk_us=median(sdk_us),
        raw_us=median(raw_us),
        ratio=median(ratios),
        sdk_rate=median(sdk_rate),
        raw_rate=median(raw_rate),
        rate_ratio=median(rate_ratios),
        ratio_q1=quantiles(ratios, n=4)[0] if len(ratios) > 1 else ratios[0],
        ratio_q3=quantiles(ratios, n=4)[2] if len(ratios) > 1 else ratios[0],
        sdk_rounds_us=tuple(sdk_us),
        raw_rounds_us=tuple(raw_us),
    )
