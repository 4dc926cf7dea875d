"""``routee-viber send-many`` SIGKILLed at chosen points of its group-committed journal.

The journal is written a batch at a time (issue 19): a batch's pending rows in one transaction
before its sends start, and outcomes a batch at a time after their results lines. A test hook
(``ROUTEE_VIBER_CRASH_AT=POINT:N``) makes the process SIGKILL itself the N-th time it reaches
a point, so that the kill lands exactly in each window, every time:

- ``pending-committed``: a batch is on disk as pending, none of its rows handed to a send;
- ``lines-written``: results lines written and flushed, their outcomes not committed;
- ``outcomes-committed``: right after an outcome commit.

Then seeded random points over several runs. Whatever the point, the next runs send no row
twice, a row whose line says it was sent is recovered as sent, and in the end every input has
exactly one line.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import otp_template, pin_for, recipient
from test_cli_interrupts import FAULTS, STATES, _check_consistent, _env, _journal_rows, _lines

from routee_viber_async.sandbox import Sandbox

ROWS = 60
POINTS = ("pending-committed", "lines-written", "outcomes-committed")


def _write_input(tmp_path: Path) -> Path:
    input_path = tmp_path / "otps.csv"
    input_path.write_text(
        "to,pin,minutes\n" + "".join(f"{recipient(i)},{pin_for(i)},5\n" for i in range(ROWS))
    )
    return input_path


def _args(sb: Sandbox, template_id: str, input_path: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
        "--sender", sb.sender_id, "--template-id", template_id, "--lang", "en",
        "--concurrency", "6", "--output", str(output),
    ]  # fmt: skip


async def _run(sb: Sandbox, args: list[str], crash_at: str | None = None) -> tuple[int, str]:
    env = _env(sb)
    if crash_at is not None:
        env["ROUTEE_VIBER_CRASH_AT"] = crash_at
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    text = err.decode()
    assert "Traceback" not in text, text
    return process.returncode, text


def _check_after_kill(journal: Path, output: Path) -> dict[int, dict[str, Any]]:
    """What a SIGKILL may leave: besides the consistent states, a row still pending may have
    the line of the outcome that was about to be committed (same seq), nothing else."""
    rows = _journal_rows(journal) if journal.exists() else {}
    lines = _lines(output)
    per_index = collections.Counter(line["index"] for line in lines)
    assert all(n == 1 for n in per_index.values()), "a row has two results lines"
    for line in lines:
        row = rows[line["index"]]
        assert row["state"] in STATES, row
        assert line["seq"] == row["seq"], (line, row)
        if row["state"] != "pending":
            assert line["ok"] == (row["state"] == "sent")
    return rows


def _check_final(sb: Sandbox, journal: Path, output: Path) -> dict[int, dict[str, Any]]:
    rows = _check_consistent(journal, output)
    assert sorted(rows) == list(range(ROWS))
    assert all(row["state"] in {"sent", "failed", "unknown"} for row in rows.values())
    assert sorted(line["index"] for line in _lines(output)) == list(range(ROWS))
    sends = collections.Counter(m.to for m in sb.messages)
    assert max(sends.values()) == 1, "a recipient got two messages"
    assert sb.duplicate_seq_count == 0
    sent = {recipient(i) for i, row in rows.items() if row["state"] == "sent"}
    assert sent <= set(sends)
    failed = {recipient(i) for i, row in rows.items() if row["state"] == "failed"}
    assert not failed & set(sends), "a row recorded as failed was accepted"
    return rows


async def test_killed_between_a_batch_commit_and_its_sends(tmp_path: Path) -> None:
    input_path = _write_input(tmp_path)
    output, journal = tmp_path / "out.jsonl", tmp_path / "otps.csv.journal"
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        args = _args(sb, await otp_template(sb), input_path, output)
        # Batches of 8 rows at concurrency 6: killed once the second batch is on disk.
        code, _ = await _run(sb, args, crash_at="pending-committed:2")
        assert code == -signal.SIGKILL
        rows = _check_after_kill(journal, output)
        second_batch = list(range(8, 16))
        assert sorted(rows) == list(range(16))
        assert all(rows[i]["state"] == "pending" for i in second_batch)
        sent_to = {m.to for m in sb.messages}
        assert not sent_to & {recipient(i) for i in second_batch}, "a batch was sent early"

        code, err = await _run(sb, args)
        assert code == 1, err  # the rows of the killed batch are unknown, not resent
        rows = _check_final(sb, journal, output)
        assert all(rows[i]["state"] == "unknown" for i in second_batch)
        assert len(sb.messages) <= ROWS - len(second_batch)


async def test_killed_after_the_lines_before_their_outcomes_recovers_them_as_sent(
    tmp_path: Path,
) -> None:
    input_path = _write_input(tmp_path)
    output, journal = tmp_path / "out.jsonl", tmp_path / "otps.csv.journal"
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        args = _args(sb, await otp_template(sb), input_path, output)
        code, _ = await _run(sb, args, crash_at="lines-written:1")
        assert code == -signal.SIGKILL
        _check_after_kill(journal, output)
        written = {line["index"]: line for line in _lines(output)}
        assert written, "the first batch's lines were written before the kill"
        rows = _journal_rows(journal)
        assert all(rows[i]["state"] == "pending" for i in written)
        accepted = len(sb.messages)

        code, err = await _run(sb, args)
        assert code in (0, 1), err  # 1: rows in flight at the kill without a line are unknown
        rows = _check_final(sb, journal, output)
        for index, line in written.items():
            assert rows[index]["state"] == "sent", rows[index]
            assert rows[index]["tracking_id"] == line["trackingId"]
        final = {line["index"]: line for line in _lines(output)}
        assert all(final[i] == line for i, line in written.items())
        # Every row but those in flight at the kill (unknown) was sent, none twice
        # (_check_final); the recovered ones were not sent again.
        unknown = sum(1 for row in rows.values() if row["state"] == "unknown")
        assert ROWS - unknown <= len(sb.messages) <= ROWS
        assert len(sb.messages) >= accepted


async def test_a_pending_row_whose_line_says_sent_is_recovered_not_unknown(
    tmp_path: Path,
) -> None:
    """What a kill between a results line and its outcome's commit leaves, made by hand."""
    input_path = _write_input(tmp_path)
    output, journal = tmp_path / "out.jsonl", tmp_path / "otps.csv.journal"
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        args = _args(sb, await otp_template(sb), input_path, output)
        code, err = await _run(sb, args)
        assert code == 0, err
        before = output.read_text()
        import sqlite3

        db = sqlite3.connect(journal)
        with db:
            db.execute(
                "UPDATE rows SET state = 'pending', tracking_id = NULL, status = NULL, "
                "emitted = 0 WHERE idx IN (4, 9)"
            )
        db.close()

        code, err = await _run(sb, args)
        assert code == 0, err
        assert "unknown outcome" not in err
        rows = _check_final(sb, journal, output)
        assert rows[4]["state"] == rows[9]["state"] == "sent"
        assert sorted(output.read_text().splitlines()) == sorted(before.splitlines())
        assert len(sb.messages) == ROWS


@pytest.mark.parametrize("seed", [31, 32, 33])
async def test_seeded_random_kills_then_a_rerun_send_every_row_at_most_once(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    input_path = _write_input(tmp_path)
    output, journal = tmp_path / "out.jsonl", tmp_path / "otps.csv.journal"
    async with Sandbox(moderation_delay=None, delivery_delay=0.05, seed=seed) as sb:
        args = _args(sb, await otp_template(sb), input_path, output)
        sb.set_faults(FAULTS)
        kills = []
        for _ in range(3):
            point = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
            code, _ = await _run(sb, args, crash_at=point)
            assert code in (0, 1, -signal.SIGKILL), (point, code)
            kills.append((point, code))
            _check_after_kill(journal, output)
            assert sb.duplicate_seq_count == 0
        sb.set_faults(None)
        code, err = await _run(sb, args)
        assert code in (0, 1), err
        _check_final(sb, journal, output)
        code, err = await _run(sb, args)  # a rerun of the finished run sends nothing
        assert code in (0, 1), err
        rows = _check_final(sb, journal, output)
    assert any(code == -signal.SIGKILL for _, code in kills), kills
    print(f"seed {seed}: {kills}, states {collections.Counter(r['state'] for r in rows.values())}")
