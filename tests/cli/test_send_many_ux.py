"""``send-many`` for its operator (issue 18): Ctrl-C in the preflight, a wrong ``--sender``
(the preflight check, ``--max-failures``), the progress display, a finished rerun, CSV
headers in any case, trailing blank lines, duplicate recipients; ``demo --timeout``."""

# The fixtures imported from test_send_many_cli (sandbox, template) are taken by name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import collections
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from test_cli_behaviour import HangingServer, assert_one_error_line
from test_send_many_cli import (  # noqa: F401
    cli_env,
    output_lines,
    recipients,
    run_cli,
    sandbox,
    send_many_args,
    sends_by_recipient,
    template,
    write_csv,
)

from routee_viber_async import NotFoundError, SendMessage, ServerError, Template
from routee_viber_async.cli import build_parser
from routee_viber_async.cli._duplicates import DuplicateCounter
from routee_viber_async.cli._failures import DEFAULT_MAX_FAILURES, FailureStreak
from routee_viber_async.cli._input import InputError, read_rows
from routee_viber_async.cli._journal import Journal, JournalMismatch
from routee_viber_async.cli._lock import JournalLock
from routee_viber_async.cli._progress import make_progress
from routee_viber_async.cli._send_many import SendMany
from routee_viber_async.resources import SendOutcome
from routee_viber_async.sandbox import Sandbox

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def journal_of(input_path: Path) -> Path:
    return input_path.with_name(input_path.name + ".journal")


def journal_states(input_path: Path) -> collections.Counter[str]:
    db = sqlite3.connect(journal_of(input_path))
    try:
        return collections.Counter(state for (state,) in db.execute("SELECT state FROM rows"))
    finally:
        db.close()


async def run_with_env(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def error_lines(err: str) -> list[str]:
    """stderr's ``routee-viber send-many: ...`` lines, without the prefix."""
    prefix = "routee-viber send-many: "
    return [line[len(prefix) :] for line in err.splitlines() if line.startswith(prefix)]


# -- 1. Ctrl-C during the preflight ------------------------------------------------------------


async def test_ctrl_c_during_the_preflight_ends_the_run_at_once(tmp_path: Path) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 3)
    async with HangingServer() as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
            "--sender", "s", "--template-id", "t", "--lang", "en",
            env=server.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # The preflight waits on the API once the server has its connection.
            await asyncio.wait_for(server.accepted.wait(), timeout=60)
            process.send_signal(signal.SIGINT)
            # Promptly: well before the 10 s attempt timeout would have ended the wait.
            out, err = await asyncio.wait_for(process.communicate(), timeout=8)
        finally:
            if process.returncode is None:  # it did not end: the test fails, without leftovers
                process.kill()
                await process.wait()
    assert process.returncode == 130
    assert out == b""
    message = assert_one_error_line(err.decode(), "send-many")
    assert message == "interrupted before anything was sent"
    # Nothing was recorded, and the journal's lock is free for the next run.
    assert not journal_of(input_path).exists()
    with JournalLock(journal_of(input_path)).acquire():
        pass


# -- 2. a wrong --sender ------------------------------------------------------------------------


async def test_a_sender_the_template_does_not_belong_to_exits_2_before_any_send(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 5)
    args = send_many_args(input_path, template, sandbox)
    args[args.index("--sender") + 1] = "no-such-sender"
    code, out, err = await run_cli(sandbox, *args)
    assert (code, out) == (2, "")
    message = assert_one_error_line(err, "send-many")
    assert message == (
        f"template {template.template_id} belongs to sender {sandbox.sender_id}, "
        "not to --sender no-such-sender: nothing was sent"
    )
    assert not journal_of(input_path).exists()  # no row was even started
    assert output_lines(input_path) == []


class SenderHidingProxy:
    """A loopback proxy to the sandbox whose template answers do not say their sender (Routee's
    do not have to): the preflight cannot check ``--sender``, so the sends are refused."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in {"authorization", "content-type", "accept"}
        }
        async with self._http.request(
            request.method, self._upstream + request.path_qs, data=await request.read(),
            headers=headers,
        ) as answer:  # fmt: skip
            body = await answer.read()
            if request.method == "GET" and answer.status == 200 and "/templates/" in request.path:
                data = json.loads(body)
                del data["senderInfoTrackingId"]
                body = json.dumps(data).encode()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)

    async def __aenter__(self) -> SenderHidingProxy:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        assert self._http is not None
        await self._runner.cleanup()
        await self._http.close()


@pytest.fixture
async def proxy(sandbox: Sandbox) -> AsyncIterator[SenderHidingProxy]:
    async with SenderHidingProxy(sandbox.base_url) as running:
        yield running


def proxied_env(sandbox: Sandbox, proxy: SenderHidingProxy) -> dict[str, str]:
    return {**cli_env(sandbox), "ROUTEE_BASE_URL": proxy.url}


def with_sender(args: list[str], sender: str) -> list[str]:
    args = list(args)
    args[args.index("--sender") + 1] = sender
    return args


async def test_identical_refusals_in_a_row_stop_the_run_and_a_fixed_rerun_sends_the_rest(
    tmp_path: Path, sandbox: Sandbox, template: Template, proxy: SenderHidingProxy
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_csv(input_path, 100)
    args = send_many_args(input_path, template, sandbox, "--concurrency", "4")
    env = proxied_env(sandbox, proxy)

    code, _, err = await run_with_env(env, *with_sender(args, "no-such-sender"))
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 2, err  # the error, then the summary
    states = journal_states(input_path)
    failed = states["failed"]
    assert set(states) == {"failed"}
    # 20 in a row, then only the sends already in flight or buffered (2 x concurrency).
    assert 20 <= failed <= 20 + 2 * 4, states
    assert lines[0] == (
        "stopped after 20 sends in a row were refused the same way (NotFoundError: POST "
        "/viber/transactional/messages: HTTP 404: Sender no-such-sender was not found. "
        "(404000000)); fix "
        f"the cause, then run again with --retry-failed to resend the {failed} failed rows "
        "(--max-failures 0 never stops)"
    )
    assert lines[1] == f"0 sent, {failed} failed, 0 unknown, {100 - failed} not yet sent, of 100"
    assert len(output_lines(input_path)) == failed
    assert sandbox.messages == []

    # The sender fixed: the same journal goes on, the failed rows are sent again, each row once.
    code, _, err = await run_with_env(env, *args, "--retry-failed")
    assert code == 0, err
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)
    assert journal_states(input_path) == {"sent": 100}
    lines_by_index = {line["index"]: line for line in output_lines(input_path)}
    assert len(output_lines(input_path)) == 100 == len(lines_by_index)
    assert all(line["ok"] for line in lines_by_index.values())


async def test_max_failures_0_never_stops(
    tmp_path: Path, sandbox: Sandbox, template: Template, proxy: SenderHidingProxy
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 30)
    args = send_many_args(input_path, template, sandbox, "--max-failures", "0")
    code, _, err = await run_with_env(
        proxied_env(sandbox, proxy), *with_sender(args, "no-such-sender")
    )
    assert code == 1, err
    assert journal_states(input_path) == {"failed": 30}
    assert error_lines(err) == ["0 sent, 30 failed, 0 unknown, 0 not yet sent, of 30"]


FINGERPRINT = {"input_sha256": "abc", "sender": "wrong", "template_id": "t", "lang": "en"}


def journal_with(path: Path, state: str) -> None:
    journal = Journal.open(path, FINGERPRINT)
    journal.record_pending(0, "+306912345678", 11)
    journal.record_outcome(0, state=state, tracking_id=None, status=state, error=None, attempts=1)
    journal.close()


def test_a_journal_whose_rows_all_failed_takes_corrected_settings(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal_with(path, "failed")
    fixed = {**FINGERPRINT, "sender": "right", "lang": "el"}
    Journal.open(path, fixed).close()
    Journal.open(path, fixed).close()  # it holds the new settings now
    with pytest.raises(JournalMismatch, match="input_sha256"):
        Journal.open(path, {**fixed, "input_sha256": "other"})  # never another input


@pytest.mark.parametrize("state", ["sent", "unknown", "pending"])
def test_a_journal_with_a_row_that_may_have_reached_routee_keeps_its_settings(
    tmp_path: Path, state: str
) -> None:
    path = tmp_path / "j.journal"
    journal_with(path, state)
    with pytest.raises(JournalMismatch, match="differs in: sender"):
        Journal.open(path, {**FINGERPRINT, "sender": "right"})


def outcome(error: Exception | None) -> SendOutcome:
    message = SendMessage("sender", "+306900000000", "t", "en")
    return SendOutcome(0, message, None, error, 1)  # type: ignore[arg-type]


def not_found(text: str = "Sender x was not found.") -> NotFoundError:
    return NotFoundError(text, status=404, code="404000000")


def test_a_streak_counts_identical_refusals_in_a_row_only() -> None:
    streak = FailureStreak(3)
    unavailable = ServerError("Service unavailable", status=503)  # retried by the client
    other = NotFoundError("Template t was not found.", status=404, code="404000001")
    sequence = [not_found(), not_found(), unavailable, not_found(), not_found(), other]
    sequence += [not_found(), not_found()]
    assert [streak.observe(outcome(error)) for error in sequence] == [False] * len(sequence)
    assert streak.observe(outcome(not_found("Sender y was not found."))) is True
    assert streak.tripped
    assert streak.observe(outcome(not_found())) is False  # it trips once

    unknown = ServerError("Internal error", status=500)  # may have been applied: unknown
    streak = FailureStreak(2)
    assert not streak.observe(outcome(not_found()))
    assert not streak.observe(outcome(unknown))
    assert not streak.observe(outcome(None))  # a success
    assert not streak.observe(outcome(not_found()))
    assert streak.observe(outcome(not_found()))

    never = FailureStreak(0)
    assert not any(never.observe(outcome(not_found())) for _ in range(100))


# -- 3. the progress display --------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr on a console is."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_rate_labelled_times_and_the_three_counts() -> None:
    stream = Terminal()
    with make_progress(10, "send-many", stream) as progress:
        for _ in range(3):
            progress.advance(True)
        progress.advance(False)
        progress.advance(False, unknown=True)
    screen = ANSI.sub("", stream.getvalue())
    last_bar, last_details = screen.splitlines()[-2:]
    assert re.fullmatch(r"send-many ━+╺?━* +5/10 +50% \d+/s", last_bar.split("\r")[-1]), screen
    assert re.fullmatch(
        r"  3 ok · 1 failed · 1 unknown · elapsed \d:\d\d:\d\d · remaining (\d:\d\d:\d\d|-:--:--)",
        last_details,
    ), screen


def test_the_plain_progress_line_has_the_three_counts_and_the_rate() -> None:
    stream = io.StringIO()
    with make_progress(4, "send-many", stream) as progress:
        progress.advance(True)
        progress.advance(True)
        progress.advance(False)
        progress.advance(False, unknown=True)
    assert re.fullmatch(
        r"send-many: 4/4 done, 2 ok, 1 failed, 1 unknown, \d+/s\n", stream.getvalue()
    )


# -- 4. a finished rerun --------------------------------------------------------------------------


async def test_a_rerun_of_a_finished_input_says_there_is_nothing_to_send(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    write_csv(input_path, 5)
    args = send_many_args(input_path, template, sandbox)
    code, _, err = await run_cli(sandbox, *args)
    assert code == 0, err
    code, out, err = await run_cli(sandbox, *args)
    assert (code, out) == (0, "")
    assert err == (
        f"routee-viber send-many: all 5 rows are already done (journal "
        f"{journal_of(input_path)}): nothing to send\n"
    )
    assert len(sandbox.messages) == 5


# -- 5. CSV input --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["To,pin", " TO ,pin", "pin,tO"])
def test_the_csv_to_column_is_found_in_any_case(tmp_path: Path, header: str) -> None:
    path = tmp_path / "a.csv"
    first, second = header.split(",")
    cells = {first: "+306912345678", second: "123456"}
    if first.strip().lower() != "to":
        cells = {first: "123456", second: "+306912345678"}
    path.write_text(f"{header}\n{cells[first]},{cells[second]}\n")
    (row,) = read_rows(path)
    assert (row.to, row.params) == ("+306912345678", {"pin": "123456"})


def test_a_csv_with_two_to_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("to,To\n+306912345678,+306912345679\n")
    with pytest.raises(InputError, match="repeated column name"):
        list(read_rows(path))


def test_trailing_blank_lines_are_fine_a_blank_row_between_rows_is_not(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("to,pin\n+306912345678,1\n+306912345679,2\n\n\n")
    assert [row.to for row in read_rows(path)] == ["+306912345678", "+306912345679"]
    path.write_text("to,pin\n+306912345678,1\n\n+306912345679,2\n")
    with pytest.raises(InputError, match=r"row 2 \(line 3\): empty row"):
        list(read_rows(path))


async def test_send_many_takes_a_capitalised_header_and_a_trailing_blank_line(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = recipients(3)
    input_path.write_text("To,pin,minutes\n" + "".join(f"{n},123456,5\n" for n in numbers) + "\n")
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)


def write_duplicates(path: Path) -> list[str]:
    """Six rows: the first recipient twice, the second three times, the third once."""
    first, second, third = recipients(3)
    numbers = [first, second, first, second, third, second]
    path.write_text("to,pin,minutes\n" + "".join(f"{n},123456,5\n" for n in numbers))
    return numbers


async def test_duplicate_recipients_are_warned_about_and_every_row_is_sent(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_duplicates(input_path)
    code, _, err = await run_cli(sandbox, *send_many_args(input_path, template, sandbox))
    assert code == 0, err
    assert error_lines(err)[0] == (
        "2 recipients appear more than once (5 rows); --allow-duplicates silences this"
    )
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)  # nothing deduplicated


async def test_allow_duplicates_silences_the_warning(
    tmp_path: Path, sandbox: Sandbox, template: Template
) -> None:
    input_path = tmp_path / "otps.csv"
    numbers = write_duplicates(input_path)
    args = send_many_args(input_path, template, sandbox, "--allow-duplicates")
    code, _, err = await run_cli(sandbox, *args)
    assert code == 0, err
    assert error_lines(err) == ["6 sent, 0 failed, 0 unknown, 0 not yet sent, of 6"]
    assert "more than once" not in err
    assert sends_by_recipient(sandbox) == collections.Counter(numbers)


def test_the_duplicate_count() -> None:
    counter = DuplicateCounter()
    numbers = [f"+3069{i:08d}" for i in range(5000)]
    for number in numbers + numbers[:10] + numbers[:3]:
        counter.add(number)
    found = counter.count()
    assert (found.recipients, found.rows) == (10, 23)


# -- 6. demo --timeout ---------------------------------------------------------------------------


async def test_demo_passes_timeout_to_its_client() -> None:
    """A timeout no call can meet: every call of the demo's client times out."""
    code, _, err = await run_with_env(
        cli_env_without_routee(), "demo", "--count", "3", "--timeout", "0.000000001"
    )
    assert code == 1, err
    assert "Traceback" not in err
    # Its last line (the lines before it say where the sandbox listens).
    assert re.fullmatch(r"routee-viber demo: POST \S+: timed out.*", err.splitlines()[-1]), err


def cli_env_without_routee() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}


# -- the documentation ---------------------------------------------------------------------------


def test_the_new_options_are_in_help_and_the_readme() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "routee_viber_async", "send-many", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for option in ("--max-failures", "--allow-duplicates"):
        assert option in result.stdout
        assert option in readme


def test_the_help_default_of_max_failures_is_the_one_used() -> None:
    """The parser holds its own copy (importing _failures would import the SDK before parsing)."""
    args = build_parser().parse_args(
        ["send-many", "in.csv", "--sender", "s", "--template-id", "t", "--lang", "en"]
    )
    assert args.max_failures == DEFAULT_MAX_FAILURES
    assert SendMany(Path("in.csv"), "s", "t", "en").max_failures == DEFAULT_MAX_FAILURES
