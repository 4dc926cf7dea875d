"""``send-many``'s journal and results file under the unlucky operator of issue 17: two runs on
one journal, a crash between a results line and its mark, ``--retry-failed``, an interrupted
``--resend-unknown``, a journal that cannot be written, an input edited during a run."""

# The fixtures imported from test_send_many_cli (sandbox, template) are taken by name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import collections
import fcntl
import io
import os
import re
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SendGate
from test_send_many_cli import (  # noqa: F401
    output_lines,
    pin_for,
    run_cli,
    sandbox,
    send_many_args,
    sends_by_recipient,
    start_cli,
    template,
    wait_for_lines,
    write_csv,
)

from routee_viber_async import RouteeViberClient, Template
from routee_viber_async.cli import _journal
from routee_viber_async.cli._input import fingerprint_file
from routee_viber_async.cli._send_many import SendMany
from routee_viber_async.sandbox import Sandbox


def journal_of(input_path: Path) -> Path:
    return input_path.with_name(input_path.name + ".journal")


def journal_rows(input_path: Path) -> dict[int, dict[str, Any]]:
    db = sqlite3.connect(journal_of(input_path))
    try:
        db.row_factory = sqlite3.Row
        return {row["idx"]: dict(row) for row in db.execute("SELECT * FROM rows")}
    finally:
        db.close()


def edit_journal(input_path: Path, sql: str, *args: Any) -> None:
    db = sqlite3.connect(journal_of(input_path))
    try:
        with db:
            db.execute(sql, args)
    finally:
        db.close()


def lines_per_index(input_path: Path) -> collections.Counter[int]:
    return collections.Counter(line["index"] for line in output_lines(input_path))


def assert_one_line_per_row(input_path: Path, count: int) -> None:
    assert sorted(lines_per_index(input_path).elements()) == list(range(count))


# -- 1. one run per journal -------------------------------------------------------------------


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[Path]:
    """``otps.csv.journal.lock`` held by this process, as a running send-many holds it."""
    path = tmp_path / "otps.csv.journal.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield path
    finally:
        os.close(fd)


async def test_a_run_on_a_journal_held_by_another_refuses_at_once(
    tmp_path: Path, sandbox: Sandbox, template: Template, held_lock: Path
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 20)
    tokens = sandbox.tokens_issued
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert str(journal_of(input_path)) in err
    assert f"pid {os.getpid()}" in err
    assert sandbox.messages == []
    assert sandbox.tokens_issued == tokens  # refused before even fetching the template


async def test_two_real_runs_on_one_journal_send_each_row_once(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 40)
    args = send_many_args(input_path, template, sandbox, "--concurrency", "4")
    async with SendGate(sandbox.base_url, allow=4) as gate:  # the first run stops mid-way
        first = await start_cli(sandbox, "--timeout", "120", *args, base_url=gate.url)
        await wait_for_lines(input_path, 1, first)

        code, _, err = await run_cli(sandbox, *args)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert f"pid {first.pid}" in err
        assert str(journal_of(input_path)) in err
        assert first.returncode is None, "the first run ended before the second one started"

        gate.release()
        _, first_err = await asyncio.wait_for(first.communicate(), timeout=60)
    assert first.returncode == 0, first_err.decode()
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)
    assert_one_line_per_row(input_path, 40)


async def test_the_lock_of_a_killed_run_does_not_block_the_next_one(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 40)
    args = send_many_args(input_path, template, sandbox, "--concurrency", "4")
    async with SendGate(sandbox.base_url, allow=4) as gate:  # killed mid-way, sends in flight
        killed = await start_cli(sandbox, "--timeout", "120", *args, base_url=gate.url)
        await wait_for_lines(input_path, 1, killed)
        await gate.wait_held(4)
        killed.kill()
        await asyncio.wait_for(killed.communicate(), timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "otps.csv.journal.lock").read_text().strip() == str(killed.pid)

    code, _, err = await run_cli(sandbox, *args)
    assert code in (0, 1), err  # 1: the rows in flight when it was killed are unknown
    assert "in use" not in err
    assert_one_line_per_row(input_path, 40)
    assert max(sends_by_recipient(sandbox).values()) == 1


# -- 2. a results line is written before it is marked; reconciled on start --------------------


async def test_a_results_line_lost_in_the_crash_window_is_written_by_the_next_run(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 10)
    args = send_many_args(input_path, template, sandbox)
    code, _, err = await run_cli(sandbox, *args)
    assert code == 0, err
    output = input_path.with_suffix(".out.jsonl")
    lines = output.read_text().splitlines(keepends=True)

    # Killed after the outcome was recorded, before its line reached the file (a full disk or
    # a kill in that window): the journal says row 3 is done, the file has no line for it.
    output.write_text("".join(line for line in lines if '"index":3,' not in line))
    # Killed after a line was written, before it was marked: the line must not be doubled.
    edit_journal(input_path, "UPDATE rows SET emitted = 0 WHERE idx = 5")

    code, _, err = await run_cli(sandbox, *args)
    assert code == 0, err
    assert_one_line_per_row(input_path, 10)
    assert sorted(output.read_text().splitlines(keepends=True)) == sorted(lines)
    assert len(sandbox.messages) == 10
    assert all(row["emitted"] for row in journal_rows(input_path).values())


async def test_a_results_file_of_another_run_is_refused_not_overwritten(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 5)
    output = input_path.with_suffix(".out.jsonl")
    output.write_text('{"index": 0, "to": "+306900000000", "ok": true}\n')
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 2, err
    assert "belongs to another run" in err
    assert output.read_text() == '{"index": 0, "to": "+306900000000", "ok": true}\n'
    assert sandbox.messages == []


# -- 3. --retry-failed and the mismatch message -----------------------------------------------


async def test_retry_failed_resends_the_failed_rows_and_never_the_unknown_ones(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 12)
    args = send_many_args(input_path, template, sandbox)
    real_preflight = SendMany._preflight_template

    async def outage_after_preflight(job: SendMany, client: RouteeViberClient) -> Template:
        found = await real_preflight(job, client)
        sandbox.set_faults({"service_unavailable": 1.0})  # an outage: every send gets 503
        return found

    monkeypatch.setattr(SendMany, "_preflight_template", outage_after_preflight)
    err_file = io.StringIO()
    code = await job_for(input_path, sandbox, template).run(factory_for(sandbox), err_file)
    assert code == 1, err_file.getvalue()
    monkeypatch.undo()
    assert {row["state"] for row in journal_rows(input_path).values()} == {"failed"}
    assert sandbox.messages == []
    sandbox.set_faults(None)

    code, _, err = await run_cli(sandbox, *args)  # without the option, failed rows are final
    assert code == 1, err
    assert sandbox.messages == []

    # Row 0's outcome is unknown (as if its send had timed out): --retry-failed leaves it.
    edit_journal(input_path, "UPDATE rows SET state = 'unknown', status = 'unknown' WHERE idx = 0")
    code, _, err = await run_cli(sandbox, *args, "--retry-failed")
    assert code == 1, err  # row 0 stays unknown
    assert sends_by_recipient(sandbox) == collections.Counter(numbers[1:])
    assert_one_line_per_row(input_path, 12)
    by_index = {line["index"]: line for line in output_lines(input_path)}
    assert by_index[0]["status"] == "unknown"
    assert all(by_index[i]["ok"] for i in range(1, 12))
    assert sandbox.duplicate_seq_count == 0

    code, _, err = await run_cli(sandbox, *args, "--retry-failed")  # nothing left to retry
    assert code == 1, err
    assert len(sandbox.messages) == 11


async def test_the_mismatch_message_says_what_deleting_would_do_and_a_safe_way(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 3)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    write_csv(input_path, 4)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Deleting it would send every row again, the 3 already sent" in err
    assert "restore its input" in err
    assert "new --journal" in err
    assert len(sandbox.messages) == 3


# -- 4. an interrupted --resend-unknown run keeps one line per row -----------------------------


async def wait_for(condition: Callable[[], bool], process: asyncio.subprocess.Process) -> None:
    for _ in range(3000):
        if condition():
            return
        assert process.returncode is None, "the run ended before it could be interrupted"
        await asyncio.sleep(0.01)
    raise AssertionError("the condition was never met")


async def read_until(process: asyncio.subprocess.Process, text: bytes) -> None:
    """Read the run's stderr until ``text`` (the run has taken the signal)."""
    assert process.stderr is not None
    seen = b""
    while text not in seen:
        chunk = await asyncio.wait_for(process.stderr.read(4096), timeout=30)
        assert chunk, f"stderr ended before {text!r}: {seen!r}"
        seen += chunk


async def test_an_interrupted_resend_unknown_run_leaves_one_line_per_row(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 30)
    args = send_many_args(input_path, template, sandbox)
    code, _, err = await run_cli(sandbox, *args)
    assert code == 0, err
    # Rows 0-9 have an unknown outcome (as after a run killed while they were in flight).
    edit_journal(
        input_path,
        "UPDATE rows SET state = 'unknown', status = 'unknown', tracking_id = NULL WHERE idx < 10",
    )
    old_seq = {i: row["seq"] for i, row in journal_rows(input_path).items()}

    slow = [*args, "--resend-unknown", "--concurrency", "1", "--rate", "4"]
    process = await start_cli(sandbox, *slow)
    await wait_for(  # until a resent row has its new line
        lambda: any(line["seq"] != old_seq[line["index"]] for line in output_lines(input_path)),
        process,
    )
    # The next reply takes seconds: a resend is in flight when the run is told to leave at once.
    sandbox.set_faults({"slow_reply": 1.0, "slow_reply_delay": 5.0})
    await wait_for(lambda: sandbox.fault_counts.get("slow_reply", 0) >= 1, process)
    process.send_signal(signal.SIGINT)
    await read_until(process, b"stopping after the sends in flight")
    process.send_signal(signal.SIGINT)  # taken apart from the first: leave at once
    await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 130
    sandbox.set_faults(None)

    rows = journal_rows(input_path)
    per_index = lines_per_index(input_path)
    assert max(per_index.values()) == 1, "a row has two results lines"
    finished = {i for i, row in rows.items() if row["state"] != "pending"}
    assert set(per_index) == finished
    for line in output_lines(input_path):
        assert line["seq"] == rows[line["index"]]["seq"]  # the row's latest outcome

    code, _, err = await run_cli(sandbox, *args, "--resend-unknown")
    assert code == 0, err
    assert_one_line_per_row(input_path, 30)


# -- 5. a journal that cannot be written ------------------------------------------------------


def connect_journal_with(
    monkeypatch: pytest.MonkeyPatch, journal: Path, setup: str | None, read_only: bool = False
) -> None:
    """The CLI's connection to ``journal`` becomes read-only, or runs ``setup`` first."""
    real_connect = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if Path(path) != journal:
            return real_connect(path, *args, **kwargs)
        if read_only:
            return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)
        db = real_connect(path, *args, **kwargs)
        if setup is not None:
            db.execute(setup)
        return db

    monkeypatch.setattr(_journal.sqlite3, "connect", connect)


def job_for(input_path: Path, sandbox: Sandbox, template: Template, **options: Any) -> SendMany:
    return SendMany(
        input=input_path,
        sender=sandbox.sender_id,
        template_id=template.template_id,
        lang="en",
        output=input_path.with_suffix(".out.jsonl"),
        **options,
    )


def factory_for(sandbox: Sandbox) -> Any:
    def factory(**options: Any) -> RouteeViberClient:
        return RouteeViberClient(
            credentials=sandbox.credentials,
            base_url=sandbox.base_url,
            auth_url=sandbox.auth_url,
            **options,
        )

    return factory


async def test_a_read_only_journal_exits_2_with_one_line_before_any_send(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 10)
    fingerprint = {
        "input_sha256": fingerprint_file(input_path),
        "sender": sandbox.sender_id,
        "template_id": template.template_id,
        "lang": "en",
    }
    _journal.Journal.open(journal_of(input_path), fingerprint).close()
    connect_journal_with(monkeypatch, journal_of(input_path), None, read_only=True)
    err = io.StringIO()
    code = await job_for(input_path, sandbox, template).run(factory_for(sandbox), err)
    assert code == 2, err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    assert "readonly" in err.getvalue()
    assert str(journal_of(input_path)) in err.getvalue()
    assert sandbox.messages == []


async def test_a_full_journal_mid_run_exits_1_with_the_journal_consistent(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 400)
    # SQLite's own "database or disk is full" once the journal reaches 8 pages (of 4 KiB): a
    # hundred rows or so in.
    connect_journal_with(monkeypatch, journal_of(input_path), "PRAGMA max_page_count = 8")
    err = io.StringIO()
    job = job_for(input_path, sandbox, template, concurrency=8)
    code = await job.run(factory_for(sandbox), err)
    text = err.getvalue()
    assert code == 1, text
    assert "database or disk is full" in text
    assert str(journal_of(input_path)) in text
    summary = re.search(r"(\d+) sent, (\d+) failed, (\d+) unknown, (\d+) not yet sent", text)
    assert summary is not None, text
    assert sum(int(n) for n in summary.groups()) == 400  # every row in one category
    monkeypatch.undo()

    rows = journal_rows(input_path)
    assert 0 < len(rows) < 400
    sent = sends_by_recipient(sandbox)
    recorded = {row["recipient"] for row in rows.values()}
    assert set(sent) <= recorded, "a row was sent without its seq in the journal"
    assert {row["state"] for row in rows.values()} <= {"pending", "sent"}
    per_index = lines_per_index(input_path)
    assert max(per_index.values()) == 1
    assert {i for i, row in rows.items() if row["state"] == "sent"} >= set(per_index)

    # Room again: the next run finishes, rows left in flight are unknown and not resent.
    err = io.StringIO()
    code = await job.run(factory_for(sandbox), err)
    assert code in (0, 1), err.getvalue()
    assert_one_line_per_row(input_path, 400)
    assert max(sends_by_recipient(sandbox).values()) == 1
    assert set(sends_by_recipient(sandbox)) >= set(numbers) - recorded


# -- 6. an input edited during the run ---------------------------------------------------------


async def test_an_input_edited_after_the_check_sends_no_unchecked_row(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 30)
    real_open = _journal.Journal.open

    def open_after_an_edit(path: Path, fingerprint: dict[str, str]) -> _journal.Journal:
        # The rows were checked; now someone appends 20 rows the check never saw.
        with input_path.open("a") as handle:
            handle.writelines(f"+3069{90000 + i:08d},{pin_for(i)},5\n" for i in range(20))
        return real_open(path, fingerprint)

    monkeypatch.setattr(_journal.Journal, "open", open_after_an_edit)
    err = io.StringIO()
    code = await job_for(input_path, sandbox, template).run(factory_for(sandbox), err)
    text = err.getvalue()
    assert code == 1, text
    assert "changed after it was checked" in text
    assert sandbox.messages == []
    assert "0 sent, 0 failed, 0 unknown, 30 not yet sent, of 30" in text


def test_retry_failed_is_documented_in_help_and_readme() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "routee_viber_async", "send-many", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--retry-failed" in result.stdout
    assert "never the unknown ones" in " ".join(result.stdout.split())
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "`--retry-failed`" in readme
