"""``send-many``'s per-row costs and resume (issue 19): group commits, one results write per
batch, a resume that walks the journal as a stream, and a preflight that skips finished rows."""

# The fixtures imported from test_send_many_cli (sandbox, template) are taken by name.
# ruff: noqa: F811

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_send_many_cli import (  # noqa: F401
    output_lines,
    sandbox,
    template,
    write_csv,
)
from test_send_many_journal import (
    assert_one_line_per_row,
    edit_journal,
    factory_for,
    job_for,
    journal_of,
    journal_rows,
)

from routee_viber_async import Template
from routee_viber_async.cli import _journal, _results, _send_many
from routee_viber_async.sandbox import Sandbox


def count_journal_statements(monkeypatch: pytest.MonkeyPatch, journal: Path) -> list[str]:
    """Every SQL statement the CLI runs on ``journal``'s connection, in order."""
    statements: list[str] = []
    real_connect = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real_connect(path, *args, **kwargs)
        if Path(path) == journal:
            db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(_journal.sqlite3, "connect", connect)
    return statements


def transactions(statements: list[str]) -> int:
    """How many transactions wrote: each BEGIN, and each write outside one (autocommitted)."""
    count = 0
    inside = False
    for statement in statements:
        verb = statement.split(None, 1)[0].upper()
        if verb == "BEGIN":
            count, inside = count + 1, True
        elif verb in ("COMMIT", "ROLLBACK"):
            inside = False
        elif verb in ("INSERT", "UPDATE", "DELETE") and not inside:
            count += 1
    return count


async def test_a_fresh_run_writes_the_journal_a_batch_at_a_time(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 400)
    statements = count_journal_statements(monkeypatch, journal_of(input_path))
    writes: list[int] = []
    real_write_many = getattr(_results.ResultsFile, "write_many", None)

    def write_many(self: _results.ResultsFile, records: Any) -> None:
        records = list(records)
        writes.append(len(records))
        assert real_write_many is not None
        real_write_many(self, records)

    monkeypatch.setattr(_results.ResultsFile, "write_many", write_many, raising=False)
    err = io.StringIO()
    code = await job_for(input_path, sandbox, template, concurrency=50).run(
        factory_for(sandbox), err
    )
    assert code == 0, err.getvalue()
    assert_one_line_per_row(input_path, 400)
    # Before: three transactions a row (pending, outcome, the emitted mark) and a SELECT to
    # read the row back. Now one per batch (of 50 pending rows, or of the outcomes known).
    assert transactions(statements) <= 400 / 8
    assert not [s for s in statements if s.startswith("SELECT") and "WHERE idx =" in s]
    # The lines went in batches, one write each.
    assert sum(writes) == 400
    assert len(writes) <= 400 / 8, writes


async def test_a_rerun_of_a_finished_run_checks_and_loads_no_row(
    tmp_path: Path, sandbox: Sandbox, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 30)
    job = job_for(input_path, sandbox, template)
    assert await job.run(factory_for(sandbox), io.StringIO()) == 0
    before = output_lines(input_path)

    checked: list[str] = []
    real_issues = _send_many.send_message_issues

    def issues(sender: str, to: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(to)
        return real_issues(sender, to, *args, **kwargs)

    def no_dict_of_every_row(self: _journal.Journal) -> Any:
        raise AssertionError("the resume loaded every row into memory")

    monkeypatch.setattr(_send_many, "send_message_issues", issues)
    monkeypatch.setattr(_journal.Journal, "known", no_dict_of_every_row)
    err = io.StringIO()
    assert await job.run(factory_for(sandbox), err) == 0, err.getvalue()
    assert checked == [], "a row the journal holds as sent was checked again"
    assert "all 30 rows are already done" in err.getvalue()  # and nothing to send
    assert output_lines(input_path) == before
    assert len(sandbox.messages) == 30

    # Rows this run sends again are checked, and only those.
    edit_journal(input_path, "UPDATE rows SET state = 'unknown', status = 'unknown' WHERE idx < 3")
    job = job_for(input_path, sandbox, template, resend_unknown=True)
    err = io.StringIO()
    assert await job.run(factory_for(sandbox), err) == 0, err.getvalue()
    # Only those are checked (the send path validates them once more on its own).
    assert set(checked) == {f"+3069{i:08d}" for i in range(3)}
    assert_one_line_per_row(input_path, 30)
    assert all(row["state"] == "sent" for row in journal_rows(input_path).values())
