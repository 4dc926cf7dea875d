"""Benchmark 2: ``send_many`` over a generated input, memory and throughput.

Each run is a child process of its own (``python -m benchmarks._fanout``), so that one run's
peak resident set size says nothing of another's. The child warms up (a few thousand sends
through the same path: connections, token, code paths, allocator pools), collects garbage, takes
its resident set size as the baseline, resets the kernel's peak mark (``/proc/self/clear_refs``)
and sends ``n`` generated messages; the growth is the peak minus the baseline. Where the peak
mark cannot be reset, a sampler task reading ``/proc/self/statm`` every 50 ms stands in.

The raw loop's run is the same hand-written aiohttp loop as in the CPU benchmark, with
``concurrency`` workers pulling from a generator of dicts: its sends per second are the
yardstick, and its memory is shown for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

import attrs

from routee_viber_async import ClientCredentials, RouteeViberClient

from ._common import (
    Server,
    cpu_seconds,
    current_rss,
    generate_messages,
    generate_payloads,
    peak_rss,
    reset_peak_rss,
)
from ._raw import RawClient
from ._server import APP_ID, APP_SECRET

__all__ = ["FanoutResult", "run_fanout"]

WARMUP = 5_000
_MIB = 1024 * 1024


@attrs.frozen
class FanoutResult:
    """One child's figures."""

    mode: str
    n: int
    ok: int
    seconds: float
    cpu_us: float
    rate: float
    baseline_mib: float
    growth_mib: float
    peak_method: str


def run_fanout(server: Server, *, mode: str, n: int, concurrency: int) -> FanoutResult:
    """Run one ``send_many`` (``mode="sdk"``) or raw loop (``"raw"``) child; return its figures."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks._fanout",
            mode,
            str(n),
            "--concurrency",
            str(concurrency),
            "--base-url",
            server.base_url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return FanoutResult(**data)


async def _sampler(peak: list[int]) -> None:
    while True:
        rss = current_rss()
        if rss > peak[0]:
            peak[0] = rss
        await asyncio.sleep(0.05)


async def _child(mode: str, n: int, concurrency: int, base_url: str) -> dict[str, Any]:
    auth_url = f"{base_url}/oauth/token"
    if mode == "sdk":
        client = RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=base_url,
            auth_url=auth_url,
            max_concurrency=concurrency,
        )

        async def run(count: int) -> int:
            ok = 0
            async for outcome in client.messages.send_many(
                generate_messages(count), concurrency=concurrency
            ):
                ok += outcome.ok
            return ok

        close = client.close
    else:
        raw = RawClient(
            send_url=f"{base_url}/viber/transactional/messages",
            auth_url=auth_url,
            concurrency=concurrency,
        )
        await raw.__aenter__()

        async def run(count: int) -> int:
            ok, _ = await raw.fan_out(generate_payloads(count))
            return ok

        async def close() -> None:
            await raw.__aexit__(None, None, None)

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


def main() -> None:
    """The child process: run one fan-out and print its figures as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._fanout")
    parser.add_argument("mode", choices=["sdk", "raw"])
    parser.add_argument("n", type=int)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    result = asyncio.run(_child(args.mode, args.n, args.concurrency, args.base_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
