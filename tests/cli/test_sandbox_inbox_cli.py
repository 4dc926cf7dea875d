"""``routee-viber sandbox`` serves the inbox (issue 24); ``routee-viber demo --ui`` leaves it up."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

LINE_TIMEOUT = 120.0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "routee_viber_async", *args]


async def _line_with(stream: asyncio.StreamReader, found: Callable[[str], bool]) -> str:
    """The first line of ``stream`` for which ``found`` holds (the process must print it)."""
    async with asyncio.timeout(LINE_TIMEOUT):
        while True:
            raw = await stream.readline()
            assert raw, "the command ended without printing the expected line"
            line = raw.decode()
            if found(line):
                return line


async def _interrupt(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(LINE_TIMEOUT):
        return await process.wait()


@pytest.fixture
async def started() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Processes a test starts; any still running at the end is killed."""
    processes: list[asyncio.subprocess.Process] = []
    yield processes
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _start(
    processes: list[asyncio.subprocess.Process], *args: str
) -> asyncio.subprocess.Process:
    env = {**os.environ, "COLUMNS": "100"}
    process = await asyncio.create_subprocess_exec(
        *cli(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    processes.append(process)
    return process


async def test_the_sandbox_command_serves_the_inbox_with_manual_moderation(
    started: list[asyncio.subprocess.Process],
) -> None:
    process = await _start(started, "sandbox", "--port", "0", "--moderation", "manual")
    assert process.stdout is not None
    line = await _line_with(process.stdout, lambda text: "inbox:" in text)
    inbox_url = line.split("inbox:", 1)[1].strip()
    assert inbox_url.startswith("http://127.0.0.1:")
    assert inbox_url.endswith("/")
    async with aiohttp.ClientSession() as http:
        async with http.get(inbox_url) as page:
            assert page.status == 200
            assert "Routee sandbox inbox" in await page.text()
        async with http.get(inbox_url + "_sandbox/templates") as listing:
            assert (await listing.json())["moderation"] == "manual"
    assert await _interrupt(process) == 130


async def test_the_sandbox_command_refuses_a_host_that_is_not_loopback() -> None:
    process = await asyncio.create_subprocess_exec(
        *cli("sandbox", "--host", "0.0.0.0", "--port", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(LINE_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().splitlines() == [
        "routee-viber sandbox: refusing to serve the sandbox on 0.0.0.0: it is not a loopback "
        "address, and the inbox shows OTP pins; pass allow_remote=True (--allow-remote) to "
        "serve it there"
    ]
    assert b"listening" not in out


async def test_demo_ui_leaves_the_sandbox_running_with_the_inbox_url(
    started: list[asyncio.subprocess.Process],
) -> None:
    process = await _start(started, "demo", "--count", "20", "--concurrency", "5", "--ui")
    assert process.stderr is not None
    line = await _line_with(process.stderr, lambda text: text.startswith("inbox: "))
    inbox_url = line.split()[1]
    async with aiohttp.ClientSession() as http:
        async with http.get(inbox_url) as page:
            assert page.status == 200
        async with http.get(inbox_url + "_sandbox/inbox?limit=50&messages=1") as response:
            inbox = await response.json()
    assert inbox["total"] == inbox["messageCount"] == 20
    for thread in inbox["threads"]:
        [message] = thread["messages"]
        assert message["text"].startswith("Your demo code is ")
        assert message["status"] == "DELIVERED"
        assert len(message["callbacks"]) == 2  # SENT and DELIVERED, to the demo's receiver
    assert await _interrupt(process) == 130
