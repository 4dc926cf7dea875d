"""``routee-viber send-many`` interrupted by SIGINT at random moments, then run again.

``tests/cli`` covers one drain (a single SIGINT) and one double SIGINT at chosen moments. Here
the signals land at random moments (one or two of them) while the sandbox injects faults, a few
times in a row on the same input and journal. After each interruption the journal is
consistent (every row pending, sent, failed or unknown; one results line per finished row and
none for a row in flight), and after the final run every row has its one line, no ``seq`` was
accepted twice and no recipient got two messages.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import otp_template, pin_for, recipient

from routee_viber_async.sandbox import Sandbox

ROWS = 120
FAULTS = {
    "slow_reply": 0.1,
    "slow_reply_delay": 0.1,
    "rate_limit": 0.05,
    "retry_after": 0.05,
    "server_error": 0.05,
    "service_unavailable": 0.05,
    "drop_connection": 0.03,
}
STATES = {"pending", "sent", "failed", "unknown"}


def _env(sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(
        ROUTEE_APPLICATION_ID=sb.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sb.credentials.application_secret,
        ROUTEE_BASE_URL=sb.base_url,
        ROUTEE_AUTH_URL=sb.auth_url,
        PYTHONWARNINGS="error",
    )
    return env


def _journal_rows(path: Path) -> dict[int, dict[str, Any]]:
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        return {row["idx"]: dict(row) for row in db.execute("SELECT * FROM rows")}
    finally:
        db.close()


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a results line was cut"
    return [json.loads(line) for line in text.splitlines()]


def _check_consistent(journal: Path, output: Path) -> dict[int, dict[str, Any]]:
    rows = _journal_rows(journal) if journal.exists() else {}
    lines = _lines(output)
    per_index = collections.Counter(line["index"] for line in lines)
    assert all(n == 1 for n in per_index.values()), "a row has two results lines"
    for index, row in rows.items():
        assert row["state"] in STATES, row
        assert row["recipient"] == recipient(index)
        if row["state"] == "pending":
            assert index not in per_index, "a row in flight has a results line"
        elif row["emitted"]:
            assert per_index[index] == 1, f"finished row {index} has no results line"
    by_index = {line["index"]: line for line in lines}
    for index, line in by_index.items():
        row = rows[index]
        assert line["ok"] == (row["state"] == "sent")
        assert line["seq"] == row["seq"]
        if row["state"] == "unknown":
            assert line["status"] == "unknown"
    return rows


async def _wait_until_running(sb: Sandbox, tokens: int, process: Any) -> None:
    """Until the run has fetched its token: its event loop runs (imports are over)."""
    for _ in range(2000):
        if sb.tokens_issued > tokens or process.returncode is not None:
            return
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("seed", [11, 12])
async def test_random_sigints_then_a_rerun_send_every_row_at_most_once(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    input_path = tmp_path / "otps.csv"
    input_path.write_text(
        "to,pin,minutes\n" + "".join(f"{recipient(i)},{pin_for(i)},5\n" for i in range(ROWS))
    )
    output = tmp_path / "out.jsonl"
    journal = tmp_path / "otps.csv.journal"
    async with Sandbox(moderation_delay=None, delivery_delay=0.05, seed=seed) as sb:
        template_id = await otp_template(sb)
        sb.set_faults(FAULTS)
        args = [
            sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
            "--sender", sb.sender_id, "--template-id", template_id, "--lang", "en",
            "--concurrency", "6", "--rate", "150", "--output", str(output),
        ]  # fmt: skip
        codes = []
        for _ in range(3):
            tokens = sb.tokens_issued
            process = await asyncio.create_subprocess_exec(
                *args, env=_env(sb), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            await _wait_until_running(sb, tokens, process)
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.uniform(0.0, 0.1))
                    if process.returncode is None:
                        process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), timeout=60)
            text = err.decode()
            assert "Traceback" not in text, text
            # -SIGINT: the signal came as the interpreter was exiting, after the run had ended
            # (a shell shows it as 130 too).
            assert process.returncode in (0, 1, 130, -signal.SIGINT), (process.returncode, text)
            codes.append(process.returncode)
            _check_consistent(journal, output)
            assert sb.duplicate_seq_count == 0

        # A run without interruption finishes the job; unknown rows are reported, not resent.
        sb.set_faults(None)
        process = await asyncio.create_subprocess_exec(
            *args, env=_env(sb), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode in (0, 1), err.decode()
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
        for path in (output, journal):
            data = path.read_bytes()
            assert not any(pin_for(i).encode() in data for i in range(ROWS))
    states = collections.Counter(row["state"] for row in rows.values())
    print(f"seed {seed}: exit codes {codes}, states {dict(states)}")
