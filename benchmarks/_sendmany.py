"""Benchmark: ``routee-viber send-many`` against ``send_many`` from a script (issue 19).

``python -m benchmarks --only sendmany`` runs it; ``python -m benchmarks._sendmany`` alone
does too (``--help``). Every measurement is a child process of its own against the one
loopback server process, so that one run's peak resident set size says nothing of another's:

- throughput: rounds in which the contenders take turns (the order rotates each round): a
  script calling ``client.messages.send_many`` over generated messages, and the command's
  ``SendMany.run`` over a CSV of the same rows with a fresh journal and results file, both at
  the same concurrency. Each child times its own work (wall clock, and ``process_time`` for
  the CPU) from the client's creation to its close: the token fetch, and for the command the
  template fetch, the preflight, the journal and the results file are in it.
- memory: the peak RSS (``VmHWM``) of whole ``send-many`` runs: a fresh run, a resume and a
  rerun of a finished run. The state a resume starts from is written directly (journal rows
  ``sent`` with their results lines, as a run leaves them): at 200,000 rows half the rows are
  done (the resume sends the other half); at 2,000,000 all but the last 20,000 (sending a
  million rows does not fit a benchmark run; the late resume is the one that has the most
  done rows to walk). A fresh run's peak does not grow with the rows (nothing is kept per row
  done), so the fresh run at 2,000,000 stands on the fresh run of the smaller size.
- preflight: microseconds per row of ``SendMany._check_rows`` (read the CSV, check each row)
  on a fresh run and on a rerun of a finished run; and the same with the row check (the rules
  of ``SendMessage.issues``) replaced by a stub, which is the command's own cost per row apart
  from the library's check.

``--before PATH`` runs every command contender a second time with ``PYTHONPATH=PATH`` (a copy
of another version of the package, e.g. ``git archive main routee_viber_async``), in the same
rounds, for before-and-after figures from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._common import SENDER, TEMPLATE_ID, Server, median, peak_rss, warm_allocator
from ._server import APP_ID, APP_SECRET

__all__ = ["SendManyResult", "run_sendmany"]

T = TypeVar("T")
_MIB = 1024 * 1024
_LATE_RESUME_LEFT = 20_000


@attrs.frozen
class SendManyResult:
    """The figures, per contender label (``script``, ``send-many``, ``send-many (before)``)."""

    rows: int
    concurrency: int
    rates: dict[str, list[float]]
    cpu_us: dict[str, list[float]]
    #: ``{label: {"fresh 200,000": MiB, ...}}``
    peaks_mib: dict[str, dict[str, float]]
    #: ``{label: {"fresh": µs, "rerun": µs, "fresh, issues() stubbed": µs, ...}}``
    preflight_us: dict[str, dict[str, float]]

    def lines(self) -> list[str]:
        """A readable summary, one figure per line."""
        out: list[str] = []
        if not self.rates["script"]:
            return out + self._other_lines()
        for label in self.rates:
            out.append(
                f"{label}: {median(self.rates[label]):,.0f} sends/s, "
                f"{median(self.cpu_us[label]):.0f} µs CPU/send (medians of "
                f"{len(self.rates[label])} rounds of {self.rows:,} at C={self.concurrency})"
            )
        script_rate, script_cpu = median(self.rates["script"]), median(self.cpu_us["script"])
        for label in self.rates:
            if label != "script":
                pairs = zip(self.rates[label], self.rates["script"], strict=True)
                cpus = zip(self.cpu_us[label], self.cpu_us["script"], strict=True)
                out.append(
                    f"{label} / script: sends/s {median([a / b for a, b in pairs]):.3f}, "
                    f"CPU/send {median([a / b for a, b in cpus]):.3f} (round by round; medians "
                    f"{median(self.rates[label]) / script_rate:.3f} and "
                    f"{median(self.cpu_us[label]) / script_cpu:.3f})"
                )
        return out + self._other_lines()

    def _other_lines(self) -> list[str]:
        out: list[str] = []
        for label, peaks in self.peaks_mib.items():
            out.append(
                f"{label} peak RSS: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in peaks.items())
            )
        for label, figures in self.preflight_us.items():
            out.append(
                f"{label} preflight: "
                + ", ".join(f"{k} {v:.2f} µs/row" for k, v in figures.items())
            )
        return out


# -- the parent ---------------------------------------------------------------------------------


def run_sendmany(
    server: Server,
    *,
    rows: int = 20_000,
    rounds: int = 5,
    concurrency: int = 50,
    sizes: tuple[int, ...] = (200_000, 2_000_000),
    preflight_rows: int = 200_000,
    before: str | None = None,
) -> SendManyResult:
    """Run every measurement (see the module docstring); ``before``: a PYTHONPATH."""
    versions = {"send-many": None} if before is None else {
        "send-many": None, "send-many (before)": before
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-sendmany-") as tmp:
        work = Path(tmp)
        rates: dict[str, list[float]] = {"script": [], **{label: [] for label in versions}}
        cpu: dict[str, list[float]] = {label: [] for label in rates}
        throughput_input = _write_csv(work / "throughput.csv", rows)
        labels = list(rates)
        for round_number in range(rounds):
            shift = round_number % len(labels)
            for label in labels[shift:] + labels[:shift]:
                if label == "script":
                    figures = _child(server, None, "script", str(rows), str(concurrency))
                else:
                    round_dir = work / f"round-{round_number}-{len(rates[label])}-{label[-3:]}"
                    round_dir.mkdir()
                    figures = _cli(
                        server, versions[label], throughput_input, round_dir, concurrency
                    )
                rates[label].append(figures["rows"] / figures["seconds"])
                cpu[label].append(figures["cpu"] / figures["rows"] * 1e6)
                print(f"  round {round_number} {label}: {figures}", file=sys.stderr)

        peaks: dict[str, dict[str, float]] = {label: {} for label in versions}
        for size in sizes:
            source = _write_csv(work / f"in-{size}.csv", size)
            for label, path in versions.items():
                peaks[label].update(
                    _memory(server, path, source, work / label[-3:], size, concurrency)
                )
                print(f"  {label} {size:,}: {peaks[label]}", file=sys.stderr)

        preflight: dict[str, dict[str, float]] = {label: {} for label in versions}
        source = _write_csv(work / f"preflight-{preflight_rows}.csv", preflight_rows)
        for label, path in versions.items():
            place = work / f"preflight-{label[-3:]}"
            place.mkdir()
            journal, output = place / "journal", place / "out.jsonl"
            for stub in (False, True):
                suffix = ", issues() stubbed" if stub else ""
                figures = _child(server, path, "preflight", str(source), str(journal), str(stub))
                preflight[label]["fresh" + suffix] = figures["us_per_row"]
            _write_done_state(source, journal, output, preflight_rows, preflight_rows)
            for stub in (False, True):
                suffix = ", issues() stubbed" if stub else ""
                figures = _child(server, path, "preflight", str(source), str(journal), str(stub))
                preflight[label]["rerun of a finished run" + suffix] = figures["us_per_row"]
            print(f"  {label} preflight: {preflight[label]}", file=sys.stderr)
    return SendManyResult(rows, concurrency, rates, cpu, peaks, preflight)


def _memory(
    server: Server, path: str | None, source: Path, root: Path, size: int, concurrency: int
) -> dict[str, float]:
    """Peak RSS in MiB of a fresh run (sizes up to 200,000), a resume and a rerun."""
    peaks: dict[str, float] = {}
    root.mkdir(exist_ok=True)
    if size <= 200_000:
        place = root / f"fresh-{size}"
        place.mkdir()
        peaks[f"fresh {size:,}"] = _cli(server, path, source, place, concurrency)["peak"] / _MIB
    place = root / f"resume-{size}"
    place.mkdir()
    done = size // 2 if size <= 200_000 else size - _LATE_RESUME_LEFT
    _write_done_state(source, place / "journal", place / "out.jsonl", size, done)
    figures = _cli(server, path, source, place, concurrency)
    peaks[f"resume {size:,} ({done:,} done)"] = figures["peak"] / _MIB
    figures = _cli(server, path, source, place, concurrency)
    peaks[f"rerun of finished {size:,}"] = figures["peak"] / _MIB
    return peaks


def _cli(
    server: Server, path: str | None, source: Path, place: Path, concurrency: int
) -> dict[str, Any]:
    return _child(
        server, path, "cli", str(source), str(place / "journal"), str(place / "out.jsonl"),
        str(concurrency),
    )  # fmt: skip


def _child(server: Server, pythonpath: str | None, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        ROUTEE_BENCH_BASE_URL=server.base_url,
        ROUTEE_BENCH_AUTH_URL=server.auth_url,
    )
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, root) if p)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks._sendmany", "child", *args],
        env=env,
        # Not the package's directory: it would come first on sys.path, before PYTHONPATH.
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child {args[0]} failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["package"] = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return figures


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _write_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("to,pin,minutes\n")
        for chunk in _chunks(range(rows), 10_000):
            handle.write("".join(f"+3069{i:08d},{i % 1_000_000:06d},5\n" for i in chunk))
    return path


def _write_done_state(source: Path, journal: Path, output: Path, size: int, done: int) -> None:
    """The journal and results file a run leaves when the first ``done`` rows were sent."""
    from routee_viber_async.cli._input import fingerprint_file
    from routee_viber_async.cli._journal import Journal, RowRecord
    from routee_viber_async.cli._results import _line

    for stale in (journal, output, journal.with_name(journal.name + "-wal")):
        stale.unlink(missing_ok=True)
    fingerprint = {
        "input_sha256": fingerprint_file(source),
        "sender": SENDER,
        "template_id": TEMPLATE_ID,
        "lang": "en",
    }
    Journal.open(journal, fingerprint).close()
    db = sqlite3.connect(journal)
    records = (
        RowRecord(i, f"+3069{i:08d}", 1_000_000 + i, "sent", f"t-{i}", "QUEUED", None, 1, True)
        for i in range(done)
    )
    with output.open("wb") as handle, db:
        for chunk in _chunks(records, 10_000):
            db.executemany(
                "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0)",
                (
                    (r.index, r.to, r.seq, r.state, r.tracking_id, r.status, r.error, r.attempts)
                    for r in chunk
                ),
            )
            handle.write(b"".join(_line(r) for r in chunk))
    db.close()


# -- the children -----------------------------------------------------------------------------


def _client_factory(**options: Any) -> Any:
    from routee_viber_async import ClientCredentials, RouteeViberClient

    return RouteeViberClient(
        credentials=ClientCredentials(APP_ID, APP_SECRET),
        base_url=os.environ["ROUTEE_BENCH_BASE_URL"],
        auth_url=os.environ["ROUTEE_BENCH_AUTH_URL"],
        **options,
    )


def _job(source: str, journal: str, output: str | None, concurrency: int) -> Any:
    from routee_viber_async.cli._send_many import SendMany

    return SendMany(
        input=Path(source),
        sender=SENDER,
        template_id=TEMPLATE_ID,
        lang="en",
        concurrency=concurrency,
        output=Path(output) if output else None,
        journal=Path(journal),
    )


def _messages(rows: int) -> Iterator[Any]:
    from routee_viber_async import SendMessage

    for i in range(rows):
        yield SendMessage(
            sender_info_tracking_id=SENDER,
            to=f"+3069{i:08d}",
            template_id=TEMPLATE_ID,
            template_lang="en",
            template_params={"pin": f"{i % 1_000_000:06d}", "minutes": "5"},
        )


async def _script(rows: int, concurrency: int) -> dict[str, Any]:
    from routee_viber_async import RetryPolicy

    started, cpu = time.perf_counter(), time.process_time()
    ok = 0
    async with _client_factory(
        retry=RetryPolicy(retry_ambiguous_sends=False), max_concurrency=concurrency
    ) as client:
        template = await client.templates.get(TEMPLATE_ID)
        async with client.messages.send_many(
            _messages(rows), concurrency=concurrency, template=template
        ) as outcomes:
            async for outcome in outcomes:
                ok += outcome.result is not None
    return {
        "rows": ok,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "peak": peak_rss(),
    }


async def _send_many(source: str, journal: str, output: str, concurrency: int) -> dict[str, Any]:
    job = _job(source, journal, output, concurrency)
    before = _sent_rows(Path(journal))
    err = io.StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    code = await job.run(_client_factory, err)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if code != 0:
        raise RuntimeError(f"send-many exited {code}: {err.getvalue()[-1000:]}")
    return {
        "rows": _sent_rows(Path(journal)) - before,
        "seconds": seconds,
        "cpu": cpu,
        "peak": peak_rss(),
    }


def _sent_rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    db = sqlite3.connect(journal)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM rows WHERE state = 'sent'").fetchone()
    finally:
        db.close()
    return int(count)


async def _preflight(source: str, journal: str, stub: bool) -> dict[str, Any]:
    from routee_viber_async import SendMessage

    job = _job(source, journal, None, 50)
    async with _client_factory() as client:
        template = await client.templates.get(TEMPLATE_ID)
    if stub:
        from routee_viber_async.cli import _send_many

        # The row check, whichever way this version of the command calls it.
        SendMessage.issues = lambda self, *args, **kwargs: []  # type: ignore[method-assign]
        if hasattr(_send_many, "send_message_issues"):
            _send_many.send_message_issues = lambda *args, **kwargs: []
    # The stream for the duplicate-recipient warning (a --before version may take none).
    streams = (io.StringIO(),) if "err" in inspect.signature(job._check_rows).parameters else ()
    started = time.perf_counter()
    _, count = job._check_rows(template, *streams)
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "us_per_row": seconds / count * 1e6}


def _child_main(mode: str, args: list[str]) -> None:
    import routee_viber_async

    print(f"package: {Path(routee_viber_async.__file__).parent}", file=sys.stderr)
    warm_allocator()
    if mode == "script":
        figures = asyncio.run(_script(int(args[0]), int(args[1])))
    elif mode == "cli":
        figures = asyncio.run(_send_many(args[0], args[1], args[2], int(args[3])))
    elif mode == "preflight":
        figures = asyncio.run(_preflight(args[0], args[1], args[2] == "True"))
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(figures))


def main() -> None:
    """``python -m benchmarks._sendmany``: this benchmark alone."""
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        _child_main(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks._sendmany")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per throughput round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sizes", default="200000,2000000", help="memory sizes")
    parser.add_argument("--preflight-rows", type=int, default=200_000)
    parser.add_argument("--before", help="PYTHONPATH of another version, measured beside")
    args = parser.parse_args()
    from ._common import server_process

    with server_process() as server:
        result = run_sendmany(
            server,
            rows=args.rows,
            rounds=args.rounds,
            concurrency=args.concurrency,
            sizes=tuple(int(s) for s in args.sizes.split(",") if s),
            preflight_rows=args.preflight_rows,
            before=args.before,
        )
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
