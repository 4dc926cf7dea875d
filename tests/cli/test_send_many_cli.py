"""``routee-viber send-many`` as a subprocess against the sandbox: resumable, at most once."""

from __future__ import annotations

import asyncio
import collections
import io
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SendGate, read_stderr_until

from routee_viber_async import (
    CreateTemplate,
    RouteeViberClient,
    Template,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async.cli._send_many import SendMany
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox


def recipients(count: int) -> list[str]:
    return [f"+3069{i:08d}" for i in range(count)]


def pin_for(i: int) -> str:
    """A pin no number, seq or id can contain by chance, so finding it in a file is a leak."""
    return f"P{i:05d}Q"


def write_csv(path: Path, count: int) -> list[str]:
    numbers = recipients(count)
    lines = ["to,pin,minutes"] + [f"{n},{pin_for(i)},5" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n")
    return numbers


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(moderation_delay=0.01, delivery_delay=0.05, seed=7) as sb:
        yield sb


@pytest.fixture
async def template(sandbox: Sandbox) -> Template:
    definition = CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin"), TemplateParam("minutes")],
        [TemplateLocale("en", "Code {{pin}}, {{minutes}} min")],
        [VarExample("pin", "123456"), VarExample("minutes", "5")],
    )
    async with client_for(sandbox) as client:
        return await approved_template(client, sandbox, definition)


def client_for(sandbox: Sandbox) -> RouteeViberClient:
    return RouteeViberClient(
        credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
    )


def cli_env(sandbox: Sandbox, base_url: str | None = None) -> dict[str, str]:
    """The CLI's environment: the sandbox's credentials, its API or ``base_url`` in front of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(
        ROUTEE_APPLICATION_ID=sandbox.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sandbox.credentials.application_secret,
        ROUTEE_BASE_URL=base_url or sandbox.base_url,
        ROUTEE_AUTH_URL=sandbox.auth_url,
        PYTHONWARNINGS="error::ResourceWarning",
    )
    return env


async def start_cli(
    sandbox: Sandbox, *args: str, base_url: str | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "routee_viber_async",
        *args,
        env=cli_env(sandbox, base_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(sandbox: Sandbox, *args: str) -> tuple[int, str, str]:
    process = await start_cli(sandbox, *args)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def send_many_args(
    input_path: Path, template: Template, sandbox: Sandbox, *extra: str
) -> list[str]:
    return [
        "send-many",
        str(input_path),
        "--sender",
        sandbox.sender_id,
        "--template-id",
        template.template_id,
        "--lang",
        "en",
        "--output",
        str(input_path.with_suffix(".out.jsonl")),
        *extra,
    ]


def output_lines(input_path: Path) -> list[dict[str, Any]]:
    path = input_path.with_suffix(".out.jsonl")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def sends_by_recipient(sandbox: Sandbox) -> collections.Counter[str]:
    return collections.Counter(m.to for m in sandbox.messages)


def assert_no_pin_in_files(tmp_path: Path, count: int) -> None:
    for path in tmp_path.iterdir():
        if path.suffix == ".csv":
            continue
        data = path.read_bytes()
        for i in range(count):
            assert pin_for(i).encode() not in data, f"pin of row {i} found in {path.name}"


async def test_send_many_sends_every_row_once_and_writes_one_line_each(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 300)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    lines = output_lines(input_path)
    assert sorted(line["index"] for line in lines) == list(range(300))
    assert all(line["ok"] and line["trackingId"] and line["attempts"] == 1 for line in lines)
    assert {line["to"] for line in lines} == set(numbers)
    assert set(lines[0]) == {
        "index",
        "to",
        "seq",
        "ok",
        "trackingId",
        "status",
        "error",
        "attempts",
    }
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)
    assert sandbox.duplicate_seq_count == 0
    assert "300 sent" in err
    assert_no_pin_in_files(tmp_path, 300)

    # A rerun finds everything finished: nothing is sent again, the output is unchanged.
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    assert len(output_lines(input_path)) == 300
    assert len(sandbox.messages) == 300


async def wait_for_lines(
    input_path: Path, at_least: int, process: asyncio.subprocess.Process
) -> None:
    deadline = asyncio.get_running_loop().time() + 60  # a loaded machine starts Python slowly
    while len(output_lines(input_path)) < at_least:
        assert process.returncode is None, "send-many ended before it could be interrupted"
        assert asyncio.get_running_loop().time() < deadline, "send-many made no progress"
        await asyncio.sleep(0.01)


async def test_sigint_drains_then_rerun_sends_the_rest_exactly_once(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 400)
    args = send_many_args(input_path, template, sandbox, "--concurrency", "8")
    async with SendGate(sandbox.base_url, allow=50) as gate:  # 8 sends in flight after 50
        process = await start_cli(sandbox, "--timeout", "120", *args, base_url=gate.url)
        await gate.wait_held(8)
        process.send_signal(signal.SIGINT)
        await read_stderr_until(process, "stopping after the sends in flight")
        gate.release()
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 130, err.decode()
    first = output_lines(input_path)
    assert 58 <= len(first) < 400  # the 50 sent before Ctrl-C and the 8 in flight at least
    # First Ctrl-C drains: every row that started has its outcome, none is unknown.
    assert all(line["ok"] for line in first)

    code, _, err_text = await run_cli(sandbox, *args)
    assert code == 0, err_text
    lines = output_lines(input_path)
    assert sorted(line["index"] for line in lines) == list(range(400))
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)
    assert sandbox.duplicate_seq_count == 0
    assert_no_pin_in_files(tmp_path, 400)


async def test_second_sigint_leaves_at_once_and_unknown_rows_are_not_resent(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 200)
    args = send_many_args(input_path, template, sandbox, "--concurrency", "10")
    # After 20 sends the gate holds the rest: ten sends are in flight when we leave.
    async with SendGate(sandbox.base_url, allow=20) as gate:
        process = await start_cli(sandbox, "--timeout", "120", *args, base_url=gate.url)
        await gate.wait_held(10)
        process.send_signal(signal.SIGINT)
        await read_stderr_until(process, "stopping after the sends in flight")
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 130

    journal = sqlite3.connect(tmp_path / "otps.csv.journal")
    pending = journal.execute("SELECT COUNT(*) FROM rows WHERE state = 'pending'").fetchone()[0]
    journal.close()
    assert pending == 10  # the sends in flight when the run was killed

    code, _, err = await run_cli(sandbox, *args)
    assert code == 1, err  # unknown rows are reported, not resent
    assert "unknown outcome" in err
    lines = output_lines(input_path)
    assert sorted(line["index"] for line in lines) == list(range(200))
    unknown = [line for line in lines if line["status"] == "unknown"]
    assert len(unknown) == pending
    # Nothing was ever sent twice, and every row not unknown was sent.
    counts = sends_by_recipient(sandbox)
    assert max(counts.values()) == 1
    assert sandbox.duplicate_seq_count == 0
    unknown_numbers = {line["to"] for line in unknown}
    assert set(numbers) - unknown_numbers <= set(counts)

    # Asked to, a rerun resends the unknown rows and the output keeps one line per input.
    code, _, err = await run_cli(sandbox, *args, "--resend-unknown")
    assert code == 0, err
    lines = output_lines(input_path)
    assert sorted(line["index"] for line in lines) == list(range(200))
    assert all(line["ok"] for line in lines)
    assert set(sends_by_recipient(sandbox)) == set(numbers)
    assert_no_pin_in_files(tmp_path, 200)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("phone,pin,minutes\n+306900000001,900001,5\n", "no 'to' column"),
        (
            "to,pin,minutes\n+306900000001,900001,5\n12345,900002,5\n",
            "row 2 (line 3): INVALID_RECIPIENT",
        ),
        (
            "to,pin,minutes\n+306900000001,900001,5\n"
            "+306900000002,900002,a value far too long for a parameter\n",
            "row 2 (line 3): PARAM_VALUE_TOO_LONG",
        ),
        ("to,pin\n+306900000001,900001\n", "row 1 (line 2): MISSING_PARAM"),
        ("to,pin,minutes,extra\n+306900000001,900001,5,x\n", "row 1 (line 2): UNKNOWN_PARAM"),
        ("to,pin,minutes\n", "no rows to send"),
    ],
)  # fmt: skip
async def test_bad_input_exits_2_with_row_and_reason_and_sends_nothing(
    tmp_path: Path, sandbox: Sandbox, template: Template, content: str, reason: str
) -> None:
    input_path = tmp_path / "bad.csv"
    input_path.write_text(content)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 2
    assert reason in err
    assert sandbox.messages == []


async def test_unreadable_input_and_bad_template_exit_2(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    missing = tmp_path / "missing.csv"
    code, _, err = await run_cli(sandbox, *send_many_args(missing, template, sandbox))
    assert code == 2
    assert "cannot read" in err

    input_path = tmp_path / "in.csv"
    write_csv(input_path, 3)
    args = send_many_args(input_path, template, sandbox)
    args[args.index(template.template_id)] = "no-such-template"
    code, _, err = await run_cli(sandbox, *args)
    assert code == 2
    assert "no-such-template was not found" in err

    args = send_many_args(input_path, template, sandbox)
    args[args.index("--lang") + 1] = "el"
    code, _, err = await run_cli(sandbox, *args)
    assert code == 2
    assert "no locale 'el'" in err
    assert sandbox.messages == []


async def test_journal_for_another_input_is_refused(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "in.csv"
    write_csv(input_path, 3)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    write_csv(input_path, 4)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 2
    assert "written for another run" in err
    assert len(sandbox.messages) == 3


async def test_one_call_commands_print_json(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    code, out, err = await run_cli(
        sandbox, "send", "--sender", sandbox.sender_id, "--to", "+306912345678",
        "--template-id", template.template_id, "--lang", "en",
        "--param", "pin=P55555Q", "--param", "minutes=5",
    )  # fmt: skip
    assert code == 0, err
    sent = json.loads(out)
    assert "P55555Q" not in out
    code, out, err = await run_cli(
        sandbox, "track", sent["trackingId"], "--wait", "--timeout", "10"
    )
    assert code == 0, err
    tracked = json.loads(out)
    assert tracked["status"]["status"] == "DELIVERED"
    assert tracked["transactionalTemplate"]["templateParams"]["pin"] == "***"

    code, out, err = await run_cli(sandbox, "templates", "list")
    assert code == 0, err
    assert template.template_id in {t["templateId"] for t in json.loads(out)}
    code, out, _ = await run_cli(sandbox, "templates", "get", template.template_id)
    assert json.loads(out)["status"] == "APPROVED"
    code, out, _ = await run_cli(
        sandbox, "templates", "set-callback", template.template_id, "https://hooks.example.com/m"
    )
    assert json.loads(out)["callbackUrl"] == "https://hooks.example.com/m"
    code, out, _ = await run_cli(
        sandbox, "templates", "set-callback", template.template_id, "--remove"
    )
    assert "callbackUrl" not in json.loads(out)

    body = tmp_path / "template.json"
    body.write_text(
        json.dumps(
            {
                "category": "Transactional",
                "params": [{"name": "name", "type": "TEXT"}],
                "locales": [{"lang": "en", "template": "Hi {{name}}"}],
                "varExample": [{"name": "name", "example": "Al"}],
            }
        )
    )
    code, out, err = await run_cli(
        sandbox, "templates", "create", str(body), "--sender", sandbox.sender_id
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["status"] == "PENDING_MODERATION"
    code, out, _ = await run_cli(sandbox, "templates", "delete", created["templateId"])
    assert json.loads(out)["status"] == "DELETED"

    code, _, err = await run_cli(sandbox, "templates", "get", "nope")
    assert code == 1
    assert err.startswith("routee-viber templates get: ")
    code, _, err = await run_cli(
        sandbox, "send", "--sender", sandbox.sender_id, "--to", "123",
        "--template-id", template.template_id, "--lang", "en",
    )  # fmt: skip
    assert code == 2
    assert "INVALID_RECIPIENT" in err


def test_help_for_every_command() -> None:
    import subprocess

    for command in (
        [], ["demo"], ["sandbox"], ["send-many"], ["send"], ["track"], ["templates"],
        ["templates", "list"], ["templates", "create"], ["templates", "set-callback"],
    ):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "routee_viber_async", *command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: routee-viber" in result.stdout


async def test_a_ctrl_c_while_the_client_closes_is_taken_and_the_close_completes(
    sandbox: Sandbox, template: Template, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stop handler stays installed until the client is closed: a Ctrl-C that comes after
    the sends, while the connections are being closed, asks for a stop (already done) instead
    of raising KeyboardInterrupt in the middle of the close."""
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 3)
    closed: list[bool] = []

    class InterruptedWhileClosing(RouteeViberClient):
        async def close(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.05)  # the event loop takes the signal in here
            await super().close()
            closed.append(True)

    def factory(**options: Any) -> RouteeViberClient:
        return InterruptedWhileClosing(
            credentials=sandbox.credentials,
            base_url=sandbox.base_url,
            auth_url=sandbox.auth_url,
            **options,
        )

    job = SendMany(
        input=input_path, sender=sandbox.sender_id, template_id=template.template_id, lang="en"
    )
    err = io.StringIO()
    code = await job.run(factory, err)
    assert closed == [True]
    assert code == 0
    assert "3 sent, 0 failed" in err.getvalue()
    assert "stopping after the sends in flight" in capsys.readouterr().err  # the handler's word
