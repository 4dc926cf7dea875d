"""How every ``routee-viber`` command behaves: one-line errors, exit codes, --timeout,
--verbose, --version, Ctrl-C against a hanging API, fast --help, templates create FILE."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from silent_server import SilentServer

from routee_viber_async import (
    ClientCredentials,
    CreateTemplate,
    RouteeViberClient,
    Template,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
    __version__,
)
from routee_viber_async.cli import build_parser, main
from routee_viber_async.sandbox import Sandbox

ROOT = Path(__file__).parent.parent.parent
EXAMPLE_TEMPLATE = ROOT / "examples" / "otp_template.json"
PIN = "P48291Q"  # no id, seq or number contains it by chance: finding it anywhere is a leak


# ---------------------------------------------------------------- helpers


def env_for(base_url: str, auth_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(ROUTEE_BASE_URL=base_url, ROUTEE_AUTH_URL=auth_url, **extra)
    return env


def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    return env_for(
        sandbox.base_url,
        sandbox.auth_url,
        ROUTEE_APPLICATION_ID=sandbox.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sandbox.credentials.application_secret,
    )


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "routee_viber_async", *args]


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *cli(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def assert_one_error_line(err: str, command: str) -> str:
    """stderr is exactly one line, ``routee-viber COMMAND: ...``; returns the message."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    prefix = f"routee-viber {command}: "
    assert lines[0].startswith(prefix), err
    return lines[0][len(prefix) :]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(moderation_delay=None, delivery_delay=0.05, seed=3) as sb:
        yield sb


@pytest.fixture
async def template(sandbox: Sandbox) -> Template:
    return await approved_template(sandbox)


async def approved_template(sandbox: Sandbox) -> Template:
    async with RouteeViberClient(
        credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
    ) as client:
        created = await client.templates.create(
            sandbox.sender_id,
            CreateTemplate(
                TemplateCategory.OTP,
                [TemplateParam("pin"), TemplateParam("minutes")],
                [TemplateLocale("en", "Code {{pin}}, {{minutes}} min")],
                [VarExample("pin", "123456"), VarExample("minutes", "5")],
            ),
        )
    sandbox.approve(created.template_id)
    return created


def send_args(sandbox: Sandbox, template: Template, *extra: str) -> list[str]:
    return [
        "send", "--sender", sandbox.sender_id, "--to", "+306912345678",
        "--template-id", template.template_id, "--lang", "en", *extra,
    ]  # fmt: skip


class HangingServer(SilentServer):
    """A loopback API that accepts connections and never answers."""

    def env(self) -> dict[str, str]:
        return env_for(
            self.url,
            self.url + "/oauth/token",
            ROUTEE_APPLICATION_ID="app",
            ROUTEE_APPLICATION_SECRET="not-a-real-secret",
        )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL that refuses connections (bound, not listening, so nobody else gets it)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


# ---------------------------------------------------------------- --help, --version, options


def test_help_and_version_import_neither_aiohttp_nor_the_models() -> None:
    probe = (
        "import sys\n"
        "from routee_viber_async.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('aiohttp', 'attrs', 'cattrs') if m in sys.modules)\n"
        "print('imported:', heavy, file=sys.stderr)\n"
    )
    for flag in ("--help", "--version"):
        result = subprocess.run(
            [sys.executable, "-c", probe, flag],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "imported: []" in result.stderr, (flag, result.stderr)


def test_version() -> None:
    result = subprocess.run(
        cli("--version"), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"routee-viber {__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "2.5", "--verbose", "templates", "list"],
        ["templates", "--timeout", "2.5", "--verbose", "list"],
        ["templates", "list", "--timeout", "2.5", "--verbose"],
    ],
    ids=["before the command", "between command and action", "after the command"],
)
def test_common_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.timeout == 2.5
    assert args.verbose is True


@pytest.mark.parametrize(
    "argv",
    [
        ["demo"], ["sandbox"], ["send-many", "in.csv", "--sender", "s", "--template-id", "t",
        "--lang", "en"], ["send", "--sender", "s", "--to", "+30", "--template-id", "t", "--lang",
        "en"], ["track", "x"], ["templates", "get", "t"], ["templates", "delete", "t"],
        ["templates", "create", "f.json", "--sender", "s"], ["templates", "set-callback", "t"],
    ],
    ids=lambda argv: argv[0] if len(argv) == 1 or argv[0] != "templates" else " ".join(argv[:2]),
)  # fmt: skip
def test_every_command_takes_timeout_and_verbose(argv: list[str]) -> None:
    defaults = build_parser().parse_args(argv)
    assert (defaults.timeout, defaults.verbose) == (None, False)
    args = build_parser().parse_args([*argv, "--timeout", "3", "--verbose"])
    assert (args.timeout, args.verbose) == (3.0, True)


def test_track_wait_timeout_is_apart_from_the_request_timeout() -> None:
    args = build_parser().parse_args(["track", "x", "--wait", "--wait-timeout", "90"])
    assert (args.wait_timeout, args.timeout) == (90.0, None)
    args = build_parser().parse_args(["track", "x", "--wait", "--timeout", "4"])
    assert (args.wait_timeout, args.timeout) == (60.0, 4.0)


# ---------------------------------------------------------------- one-line errors, exit codes


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for name in list(os.environ):
        if name.startswith("ROUTEE_"):
            monkeypatch.delenv(name)
    assert main(["templates", "list"]) == 2
    message = assert_one_error_line(capsys.readouterr().err, "templates list")
    assert "ROUTEE_APPLICATION_ID" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read"), (b"{not json", "not valid JSON"), (b'{"category": 7}', "category")],
    ids=["unreadable", "bad JSON", "bad template"],
)
def test_templates_create_with_a_bad_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    says: str,
) -> None:
    monkeypatch.setenv("ROUTEE_ACCESS_TOKEN", "unused")
    path = tmp_path / "template.json"
    if content is not None:
        path.write_bytes(content)
    assert main(["templates", "create", str(path), "--sender", "s"]) == 2
    assert says in assert_one_error_line(capsys.readouterr().err, "templates create")


def test_connection_refused(
    refusing_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEE_BASE_URL", refusing_url)
    monkeypatch.setenv("ROUTEE_AUTH_URL", refusing_url + "/oauth/token")
    monkeypatch.setenv("ROUTEE_ACCESS_TOKEN", "unused")
    assert main(["templates", "get", "t1", "--timeout", "5"]) == 1
    message = assert_one_error_line(capsys.readouterr().err, "templates get")
    assert "GET /viber/transactional/templates/t1" in message


async def test_refusals_by_routee(sandbox: Sandbox, template: Template) -> None:
    env = sandbox_env(sandbox)
    code, out, err = await run_cli(env, "templates", "get", "no-such-template")
    assert (code, out) == (1, "")
    assert "404" in assert_one_error_line(err, "templates get")

    # The same bad input exits 2, caught locally (a recipient that is not E.164)...
    local = send_args(sandbox, template, "--param", f"pin={PIN}", "--param", "minutes=5")
    local[local.index("--to") + 1] = "123"
    code, _, err = await run_cli(env, *local)
    assert code == 2
    assert "INVALID_RECIPIENT" in assert_one_error_line(err, "send")
    # ... or refused by Routee's 400 (a parameter the template needs is missing).
    code, _, err = await run_cli(env, *send_args(sandbox, template, "--param", f"pin={PIN}"))
    assert code == 2
    assert_one_error_line(err, "send")
    assert PIN not in err
    assert sandbox.messages == []


async def test_wait_without_a_final_status() -> None:
    async with Sandbox(moderation_delay=None, delivery_delay=3600, seed=4) as sandbox:
        template = await approved_template(sandbox)
        env = sandbox_env(sandbox)
        params = ["--param", f"pin={PIN}", "--param", "minutes=5"]
        code, out, err = await run_cli(env, *send_args(sandbox, template, *params))
        assert code == 0, err
        tracking_id = json.loads(out)["trackingId"]
        code, out, err = await run_cli(env, "track", tracking_id, "--wait", "--wait-timeout", "0.3")
    assert (code, out) == (1, "")
    assert "no final status" in assert_one_error_line(err, "track")


def test_sandbox_port_in_use(busy_port: int) -> None:
    result = subprocess.run(
        cli("sandbox", "--port", str(busy_port)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    message = assert_one_error_line(result.stderr, "sandbox")
    assert message == f"cannot listen on 127.0.0.1:{busy_port}: address already in use"


def test_sandbox_unknown_host() -> None:
    result = subprocess.run(
        cli("sandbox", "--host", "no-such-host.invalid", "--port", "0"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    message = assert_one_error_line(result.stderr, "sandbox")
    assert message.startswith("cannot listen on no-such-host.invalid:0: ")


# ---------------------------------------------------------------- a hanging API


@pytest.mark.parametrize("where", ["before", "after"])
async def test_timeout_ends_a_call_to_a_hanging_api(where: str) -> None:
    async with HangingServer() as server:
        args = ["templates", "get", "t1"]
        args = ["--timeout", "1", *args] if where == "before" else [*args, "--timeout", "1"]
        started = time.monotonic()
        code, out, err = await run_cli(server.env(), *args)
        elapsed = time.monotonic() - started
    assert (code, out) == (1, "")
    assert "timed out" in assert_one_error_line(err, "templates get")
    assert elapsed < 30, elapsed  # the default settings take about 44 s


async def test_send_many_timeout_reaches_its_client(tmp_path: Path) -> None:
    """send-many builds its client through the factory: --timeout bounds its preflight too."""
    input_path = tmp_path / "otps.csv"
    input_path.write_text(f"to,pin\n+306912345678,{PIN}\n")
    async with HangingServer() as server:
        started = time.monotonic()
        code, _, err = await run_cli(
            server.env(),
            "send-many", str(input_path), "--sender", "s", "--template-id", "t", "--lang", "en",
            "--timeout", "1",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert code == 1
    assert "timed out" in assert_one_error_line(err, "send-many")
    assert elapsed < 30, elapsed


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["templates", "get", "t1"], "templates get"),
        (["track", "some-id", "--wait"], "track"),
        (["send", "--sender", "s", "--to", "+306912345678", "--template-id", "t", "--lang",
          "en", "--param", f"pin={PIN}"], "send"),
    ],
    ids=["templates get", "track --wait", "send"],
)  # fmt: skip
async def test_ctrl_c_while_waiting_on_the_api(argv: list[str], command: str) -> None:
    async with HangingServer() as server:
        process = await asyncio.create_subprocess_exec(
            *cli(*argv),
            env=server.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # The command is waiting on the API once the server has its connection.
        await asyncio.wait_for(server.accepted.wait(), timeout=60)
        process.send_signal(signal.SIGINT)
        # Promptly: well before the 10 s attempt timeout would have ended the wait.
        out, err = await asyncio.wait_for(process.communicate(), timeout=8)
    assert process.returncode == 130
    assert out == b""
    assert assert_one_error_line(err.decode(), command) == "interrupted"


# ---------------------------------------------------------------- --verbose


async def test_verbose_logs_the_sdk_records_without_secrets(
    sandbox: Sandbox, template: Template
) -> None:
    async with aiohttp.ClientSession() as http:
        token = await ClientCredentials(
            sandbox.credentials.application_id, sandbox.credentials.application_secret
        ).fetch_token(http, sandbox.auth_url)
    secret = sandbox.credentials.application_secret
    params = ["--param", f"pin={PIN}", "--param", "minutes=5"]

    code, out, err = await run_cli(
        sandbox_env(sandbox), "--verbose", *send_args(sandbox, template, *params)
    )
    assert code == 0, err
    assert re.search(r"DEBUG routee_viber_async: POST /viber/\S+ -> 200", err), err
    assert "DEBUG routee_viber_async: obtained an access token" in err
    assert secret not in err
    basic = base64.b64encode(f"{sandbox.credentials.application_id}:{secret}".encode()).decode()
    assert basic not in err
    assert PIN not in err + out

    env = sandbox_env(sandbox)
    del env["ROUTEE_APPLICATION_ID"], env["ROUTEE_APPLICATION_SECRET"]
    env["ROUTEE_ACCESS_TOKEN"] = token.value
    code, out, err = await run_cli(env, *send_args(sandbox, template, *params), "--verbose")
    assert code == 0, err
    assert "DEBUG routee_viber_async" in err
    assert token.value not in err + out
    assert PIN not in err + out

    code, out, err = await run_cli(env, *send_args(sandbox, template, *params))
    assert code == 0, err
    assert err == ""  # quiet without --verbose


# ---------------------------------------------------------------- templates create FILE


def test_templates_create_help_shows_the_example_file() -> None:
    result = subprocess.run(
        cli("templates", "create", "--help"), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    example = result.stdout[result.stdout.index("\n  {") : result.stdout.index("\n  }") + 4]
    assert json.loads(example) == json.loads(EXAMPLE_TEMPLATE.read_text())
    for field in ("category", "params", "locales", "varExample", "callbackUrl"):
        assert f'"{field}"' in result.stdout


def test_the_readme_shows_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", readme, re.DOTALL)
    assert json.loads(EXAMPLE_TEMPLATE.read_text()) in [json.loads(b) for b in blocks]


async def test_templates_create_with_the_example_file(sandbox: Sandbox) -> None:
    code, out, err = await run_cli(
        sandbox_env(sandbox),
        "templates", "create", str(EXAMPLE_TEMPLATE), "--sender", sandbox.sender_id,
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["status"] == "PENDING_MODERATION"
    assert created["category"] == "OTP"
    assert [p["name"] for p in created["params"]] == ["pin", "minutes"]
