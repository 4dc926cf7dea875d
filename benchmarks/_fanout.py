"""Benchmark 2: ``send_many`` over a generated input, memory and throughput.

Every run is a child process of its own (``python -m benchmarks._fanout``), so that one run's
peak resident set size says nothing of another's. Two kinds of child:

- ``sdk`` / ``raw`` (memory): warm up (a few thousand sends through the same path:
  connections, token, code paths, allocator pools), collect garbage, take the resident set size
  as the baseline, reset the kernel's peak mark (``/proc/self/clear_refs``) and send ``n``
  generated messages in one ``send_many`` (the raw loop: one fan-out); the growth is the peak
  minus the baseline. Where the peak mark cannot be reset, a sampler task reading
  ``/proc/self/statm`` every 50 ms stands in. The run's sends per second are shown too.
- ``interleaved`` (throughput): both contenders in one process, warmed up, then rounds of
  ``send_many`` and of the raw loop's fan-out taking turns (who goes first alternates), each
  round's sends per second and CPU per send recorded. The parent runs one such child per hash
  seed and compares the rounds pair by pair.

Why interleaved rounds, and why several hash seeds: on a shared 2-core machine the CPU a send
costs moves by 10-20 % within a minute (other tenants, where a full garbage collection lands),
so whole runs a minute apart compare the machine's moods. And a process's layout (its hash
seed, its history) decides how well a hot path uses the caches: in one series the raw loop's
CPU per send was about 90 µs under one seed and 105-129 µs under eight others, with the same
instruction count (callgrind). Rounds taking turns meet the same moods; several seeds spread
the layout luck over both contenders.

A coin the raw loop used to toss per process: whether asyncio's 256 KiB socket reads were served
by ``mmap`` (about 13 µs of system time per answer) depended on the process's history. Every
child now raises glibc's mmap threshold first (:func:`~benchmarks._common.warm_allocator`), the
way any process that once freed a large block has it, so that both contenders read from the heap.

The raw loop is the same hand-written aiohttp loop as in the CPU benchmark, with
``concurrency`` workers pulling from a generator of dicts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from routee_viber_async import ClientCredentials, RouteeViberClient

from ._common import (
    Server,
    cpu_seconds,
    current_rss,
    generate_messages,
    generate_payloads,
    median,
    peak_rss,
    reset_peak_rss,
    warm_allocator,
)
from ._raw import RawClient
from ._server import APP_ID, APP_SECRET

__all__ = ["FanoutResult", "InterleavedResult", "run_fanout", "run_interleaved"]

WARMUP = 5_000
_MIB = 1024 * 1024

#: A contender: ``run(count)`` sends ``count`` generated messages and returns how many were
#: accepted; ``close()`` releases it.
_Contender = tuple[Callable[[int], Awaitable[int]], Callable[[], Awaitable[None]]]


@attrs.frozen
class FanoutResult:
    """One memory child's figures."""

    mode: str
    n: int
    ok: int
    seconds: float
    cpu_us: float
    rate: float
    baseline_mib: float
    growth_mib: float
    peak_method: str


@attrs.frozen
class InterleavedResult:
    """Rounds of ``send_many`` and of the raw loop taking turns, over several hash seeds."""

    n: int  # inputs per contender, all rounds together
    round_size: int
    rounds: int  # per contender, all seeds together
    seeds: int
    sdk_rates: tuple[float, ...]
    raw_rates: tuple[float, ...]
    sdk_cpu_us: tuple[float, ...]
    raw_cpu_us: tuple[float, ...]

    @property
    def rate_ratios(self) -> list[float]:
        """Each pair of rounds' SDK / raw sends per second."""
        return [s / r for s, r in zip(self.sdk_rates, self.raw_rates, strict=True)]

    @property
    def rate_ratio(self) -> float:
        """The median of :attr:`rate_ratios`."""
        return median(self.rate_ratios)

    @property
    def cpu_ratio(self) -> float:
        """The median pair's SDK / raw CPU per send."""
        return median([s / r for s, r in zip(self.sdk_cpu_us, self.raw_cpu_us, strict=True)])

    @property
    def sdk_rate(self) -> float:
        return median(list(self.sdk_rates))

    @property
    def raw_rate(self) -> float:
        return median(list(self.raw_rates))

    @property
    def sdk_us(self) -> float:
        return median(list(self.sdk_cpu_us))

    @property
    def raw_us(self) -> float:
        return median(list(self.raw_cpu_us))


def _child_process(args: list[str], hash_seed: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._fanout", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
    )
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def run_fanout(
    server: Server, *, mode: str, n: int, concurrency: int, hash_seed: int = 1
) -> FanoutResult:
    """Run one memory child: ``send_many`` (``mode="sdk"``) or the raw loop (``"raw"``)."""
    data = _child_process(
        [mode, str(n), "--concurrency", str(concurrency), "--base-url", server.base_url],
        hash_seed,
    )
    return FanoutResult(**data)


def run_interleaved(
    server: Server,
    *,
    n: int,
    concurrency: int,
    seeds: int = 8,
    rounds_per_seed: int = 5,
) -> InterleavedResult:
    """``n`` inputs per contender, in ``seeds * rounds_per_seed`` rounds taking turns."""
    round_size = max(1, n // (seeds * rounds_per_seed))
    sdk_rates: list[float] = []
    raw_rates: list[float] = []
    sdk_cpu: list[float] = []
    raw_cpu: list[float] = []
    for seed in range(1, seeds + 1):
        data = _child_process(
            [
                "interleaved",
                str(round_size),
                "--rounds",
                str(rounds_per_seed),
                "--concurrency",
                str(concurrency),
                "--base-url",
                server.base_url,
            ],
            seed,
        )
        sdk_rates += data["sdk_rates"]
        raw_rates += data["raw_rates"]
        sdk_cpu += data["sdk_cpu_us"]
        raw_cpu += data["raw_cpu_us"]
    return InterleavedResult(
        n=round_size * seeds * rounds_per_seed,
        round_size=round_size,
        rounds=seeds * rounds_per_seed,
        seeds=seeds,
        sdk_rates=tuple(sdk_rates),
        raw_rates=tuple(raw_rates),
        sdk_cpu_us=tuple(sdk_cpu),
        raw_cpu_us=tuple(raw_cpu),
    )


# -- the child processes ------------------------------------------------------------------------


async def _sdk(base_url: str, concurrency: int) -> _Contender:
    client = RouteeViberClient(
        credentials=ClientCredentials(APP_ID, APP_SECRET),
        base_url=base_url,
        auth_url=f"{base_url}/oauth/token",
        max_concurrency=concurrency,
    )

    async def run(count: int) -> int:
        ok = 0
        async for outcome in client.messages.send_many(
            generate_messages(count), concurrency=concurrency
        ):
            ok += outcome.ok
        return ok

    return run, client.close


async def _raw(base_url: str, concurrency: int) -> _Contender:
    raw = RawClient(
        send_url=f"{base_url}/viber/transactional/messages",
        auth_url=f"{base_url}/oauth/token",
        concurrency=concurrency,
    )
    await raw.__aenter__()

    async def run(count: int) -> int:
        ok, _ = await raw.fan_out(generate_payloads(count))
        return ok

    async def close() -> None:
        await raw.__aexit__(None, None, None)

    return run, close


async def _sampler(peak: list[int]) -> None:
    while True:
        rss = current_rss()
        if rss > peak[0]:
            peak[0] = rss
        await asyncio.sleep(0.05)


async def _memory_child(mode: str, n: int, concurrency: int, base_url: str) -> dict[str, Any]:
    run, close = await (_sdk if mode == "sdk" else _raw)(base_url, concurrency)
    try:
        await run(WARMUP)
        gc.collect()
        baseline = current_rss()
        peak_reset = reset_peak_rss()
        sampled = [baseline]
        sampler = asyncio.create_task(_sampler(sampled))
        cpu0 = cpu_seconds()
        wall0 = time.perf_counter()
        ok = await run(n)
        seconds = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        sampler.cancel()
        peak = max(peak_rss(), sampled[0]) if peak_reset else sampled[0]
    finally:
        await close()
    return {
        "mode": mode,
        "n": n,
        "ok": ok,
        "seconds": seconds,
        "cpu_us": cpu / n * 1e6,
        "rate": n / seconds,
        "baseline_mib": baseline / _MIB,
        "growth_mib": (peak - baseline) / _MIB,
        "peak_method": "VmHWM" if peak_reset else "sampled",
    }


async def _interleaved_child(
    round_size: int, rounds: int, concurrency: int, base_url: str
) -> dict[str, Any]:
    contenders = {
        "sdk": await _sdk(base_url, concurrency),
        "raw": await _raw(base_url, concurrency),
    }
    rates: dict[str, list[float]] = {"sdk": [], "raw": []}
    cpu_us: dict[str, list[float]] = {"sdk": [], "raw": []}
    try:
        for run, _ in contenders.values():
            await run(WARMUP)
        for i in range(rounds):
            for mode in ("sdk", "raw") if i % 2 == 0 else ("raw", "sdk"):
                run = contenders[mode][0]
                cpu0 = cpu_seconds()
                wall0 = time.perf_counter()
                ok = await run(round_size)
                seconds = time.perf_counter() - wall0
                cpu = cpu_seconds() - cpu0
                if ok != round_size:
                    raise RuntimeError(f"{mode}: {round_size - ok} sends failed")
                rates[mode].append(round_size / seconds)
                cpu_us[mode].append(cpu / round_size * 1e6)
    finally:
        for _, close in contenders.values():
            await close()
    return {
        "sdk_rates": rates["sdk"],
        "raw_rates": rates["raw"],
        "sdk_cpu_us": cpu_us["sdk"],
        "raw_cpu_us": cpu_us["raw"],
    }


def main() -> None:
    """A child process: run it and print its figures as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._fanout")
    parser.add_argument("mode", choices=["sdk", "raw", "interleaved"])
    parser.add_argument("n", type=int, help="inputs (interleaved: per round and contender)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per contender")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    warm_allocator()
    if args.mode == "interleaved":
        result = asyncio.run(
            _interleaved_child(args.n, args.rounds, args.concurrency, args.base_url)
        )
    else:
        result = asyncio.run(_memory_child(args.mode, args.n, args.concurrency, args.base_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
