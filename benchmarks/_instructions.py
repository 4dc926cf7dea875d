"""Benchmarks 1, 2 and 4 counted in instructions: what the client executes per send (callgrind).

Process CPU time on a shared machine moves by ±5-10 % from run to run (the other core's load,
the allocator's state, where a full garbage collection lands); the number of instructions the
client process executes per send hardly moves. Each contender runs as a child process under
``valgrind --tool=callgrind`` twice, sending ``small`` and then ``large`` messages in one
``asyncio.gather`` at concurrency C (start-up, imports and warm-up are the same in both runs);
``(I_large - I_small) / (large - small)`` is the count per send. User-space instructions only:
system calls are counted where they are made, not inside the kernel. The fan-out variant runs
``send_many`` over generated messages against the raw loop's ``concurrency`` workers pulling
generated payloads (benchmark 2's contenders). Every child sends one message before the
counted ones (the token, a connection): the counts are the steady state's; a cold start under
load is the storm benchmark's business. Then it collects and freezes its heap (``gc.freeze()``):
a full collection walks every object of the process, here about 43,000 (modules, the prepared
inputs) for 13 ms of CPU, and whether one landed in the smaller run or not moved the count per
send by up to 20 k either way. Frozen, a full collection walks what the counted sends keep
alive, the same way for both contenders.

Needs ``valgrind`` on the PATH; without it the benchmark reports itself skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import attrs

from routee_viber_async import ClientCredentials, RetryPolicy, RouteeViberClient

from ._common import (
    Server,
    generate_messages,
    generate_payloads,
    message,
    payload,
    warm_allocator,
)
from ._cpu import FLAKY_INITIAL_BACKOFF, FLAKY_MAX_BACKOFF
from ._raw import RawClient
from ._server import APP_ID, APP_SECRET

__all__ = ["InstructionsResult", "run_instructions", "valgrind_available"]

# Under valgrind every answer takes many times longer: the SDK waits as long as aiohttp's own
# default (what the raw loop has), not its usual 10 s.
_TIMEOUT = 300.0
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


@attrs.frozen
class InstructionsResult:
    """Instructions per send of each contender (thousands): plain, with 5 % of 503s, fan-out."""

    small: int
    large: int
    concurrency: int
    sdk_k: float
    raw_k: float
    flaky_sdk_k: float
    flaky_raw_k: float
    fanout_sdk_k: float
    fanout_raw_k: float


def valgrind_available() -> bool:
    """Whether callgrind can be run here."""
    return shutil.which("valgrind") is not None


_VARIANTS = ("plain", "flaky", "fanout")


def _count(mode: str, n: int, base_url: str, concurrency: int, variant: str) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks._instructions",
        mode,
        str(n),
        base_url,
        str(concurrency),
        variant,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env, check=False)
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({mode}, {n}): {out.stderr[-2000:]}")
    return int(found.group(1))


def run_instructions(
    server: Server, *, small: int = 1000, large: int = 5000, concurrency: int = 50
) -> InstructionsResult:
    """Count both contenders in every variant.

    The SDK's and the raw loop's runs of the same size go side by side (two valgrind processes
    at a time), so that both meet the same load: how many answers are ready at each turn of the
    event loop changes the count a little.
    """
    jobs = [
        (mode, n, variant)
        for variant in _VARIANTS
        for n in (small, large)
        for mode in ("sdk", "raw")
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(
                jobs,
                pool.map(
                    lambda job: _count(job[0], job[1], server.base_url, concurrency, job[2]),
                    jobs,
                ),
                strict=True,
            )
        )

    def per_send(mode: str, variant: str) -> float:
        return (
            (counts[mode, large, variant] - counts[mode, small, variant]) / (large - small) / 1000
        )

    return InstructionsResult(
        small=small,
        large=large,
        concurrency=concurrency,
        sdk_k=per_send("sdk", "plain"),
        raw_k=per_send("raw", "plain"),
        flaky_sdk_k=per_send("sdk", "flaky"),
        flaky_raw_k=per_send("raw", "flaky"),
        fanout_sdk_k=per_send("sdk", "fanout"),
        fanout_raw_k=per_send("raw", "fanout"),
    )


# -- the child process ---------------------------------------------------------------------------


def _settle_heap() -> None:
    """Collect, then freeze what is left: full collections walk only what the counted sends
    keep alive (see the module docstring)."""
    gc.collect()
    gc.freeze()


async def _child(mode: str, n: int, base_url: str, concurrency: int, variant: str) -> None:
    auth_url = f"{base_url}/oauth/token"
    flaky = variant == "flaky"
    api_url = f"{base_url}/flaky" if flaky else base_url
    if variant == "fanout":
        await _fanout_child(mode, n, base_url, concurrency)
        return
    if mode == "sdk":
        messages = [message(i) for i in range(n)]
        async with RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=api_url,
            auth_url=auth_url,
            max_concurrency=concurrency,
            timeout=_TIMEOUT,
            retry=RetryPolicy(
                initial_backoff=FLAKY_INITIAL_BACKOFF,
                max_backoff=FLAKY_MAX_BACKOFF,
                budget=None,
                deadline=None,  # the queue of 5,000 sends takes minutes under valgrind
            ),
        ) as client:
            send = client.messages.send
            await send(message(n))  # the token and a connection, before the counted sends
            _settle_heap()
            await asyncio.gather(*[send(m) for m in messages])
        return
    payloads = [payload(i) for i in range(n)]
    async with RawClient(
        send_url=f"{api_url}/viber/transactional/messages",
        auth_url=auth_url,
        concurrency=concurrency,
        initial_backoff=FLAKY_INITIAL_BACKOFF,
        max_backoff=FLAKY_MAX_BACKOFF,
    ) as raw:
        send_raw = raw.send_with_retry if flaky else raw.send
        await send_raw(payload(n))
        _settle_heap()
        await asyncio.gather(*[send_raw(p) for p in payloads])


async def _fanout_child(mode: str, n: int, base_url: str, concurrency: int) -> None:
    auth_url = f"{base_url}/oauth/token"
    if mode == "sdk":
        async with RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=base_url,
            auth_url=auth_url,
            max_concurrency=concurrency,
            timeout=_TIMEOUT,
        ) as client:
            await client.messages.send(message(n))
            _settle_heap()
            async for outcome in client.messages.send_many(
                generate_messages(n), concurrency=concurrency
            ):
                assert outcome.ok
        return
    async with RawClient(
        send_url=f"{base_url}/viber/transactional/messages",
        auth_url=auth_url,
        concurrency=concurrency,
    ) as raw:
        await raw.send(payload(n))
        _settle_heap()
        ok, _ = await raw.fan_out(generate_payloads(n))
        assert ok == n


def main() -> None:
    """``python -m benchmarks._instructions MODE N BASE_URL C VARIANT`` (run by valgrind)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sdk", "raw"])
    parser.add_argument("n", type=int)
    parser.add_argument("base_url")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("variant", choices=_VARIANTS)
    args = parser.parse_args()
    warm_allocator()
    asyncio.run(_child(args.mode, args.n, args.base_url, args.concurrency, args.variant))


if __name__ == "__main__":
    main()
