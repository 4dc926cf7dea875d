"""Helpers of the distributed ``send-many`` tests: real worker and coordinator processes, the
real Redis (valkey) and the sandbox, and the checks every run must pass."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from routee_viber_async import (
    CreateTemplate,
    RetryPolicy,
    RouteeViberClient,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async.cli._fanout_key import generate_key
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox

#: A generous bound for any one wait on a condition (a loaded 2-core machine).
WAIT = 60.0


def pin_for(index: int) -> str:
    """A pin no number, seq, id or token can contain by chance."""
    return f"P{index:05d}Q"


def recipient(index: int) -> str:
    return f"+3069{index:08d}"


def write_input(path: Path, rows: int) -> Path:
    path.write_text(
        "to,pin,minutes\n" + "".join(f"{recipient(i)},{pin_for(i)},5\n" for i in range(rows))
    )
    return path


async def otp_template(sb: Sandbox) -> str:
    definition = CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin"), TemplateParam("minutes")],
        [TemplateLocale("en", "Code {{pin}}, valid {{minutes}} min")],
        [VarExample("pin", "123456"), VarExample("minutes", "5")],
    )
    client = RouteeViberClient(
        credentials=sb.credentials,
        base_url=sb.base_url,
        auth_url=sb.auth_url,
        retry=RetryPolicy.no_wait(max_attempts=3),
    )
    async with client:
        return (await approved_template(client, sb, definition)).template_id


def env_for(sb: Sandbox, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(
        ROUTEE_APPLICATION_ID=sb.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sb.credentials.application_secret,
        ROUTEE_BASE_URL=sb.base_url,
        ROUTEE_AUTH_URL=sb.auth_url,
        ROUTEE_FANOUT_KEY=key or generate_key(),
        PYTHONWARNINGS="error",
    )
    return env


class Worker:
    """One ``routee-viber worker`` process; its log in a file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls,
        env: dict[str, str],
        redis_url: str,
        log: Path,
        *extra: str,
        concurrency: int = 4,
    ) -> Worker:
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "routee_viber_async", "worker", "--redis", redis_url,
                "--concurrency", str(concurrency), "--redeliver-after", "2", *extra,
                env=env, stdout=handle, stderr=handle,
            )  # fmt: skip
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_ready(self) -> None:
        await until(lambda: _async_true("ready" in self.log.read_text(errors="replace")))

    async def terminate(self) -> int:
        """SIGTERM; its exit code (it must leave within the bound)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), WAIT)

    async def kill(self) -> None:
        """SIGKILL, and reap it: a child left unreaped when the test's loop closes is an
        unclosed transport, reported in whichever test the collector happens to run."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def _async_true(value: bool) -> bool:
    return value


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait (at most ``WAIT`` s) until ``condition`` holds: a state of other processes (Redis's
    journal, a log), which nothing here can be told of, so it is looked at every 20 ms."""
    async with asyncio.timeout(WAIT):
        while not await condition():  # noqa: ASYNC110 (another process's state: no event)
            await asyncio.sleep(0.02)


def send_many_args(
    sb: Sandbox, template_id: str, input_path: Path, output: Path, redis_url: str, *extra: str
) -> list[str]:
    return [
        sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
        "--sender", sb.sender_id, "--template-id", template_id, "--lang", "en",
        "--output", str(output), "--redis", redis_url, "--chunk-size", "40", *extra,
    ]  # fmt: skip


async def start_coordinator(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """Wait for a coordinator; its exit code and stderr (all of it, in the failure, if it
    does not end within the bound)."""
    task = asyncio.ensure_future(process.communicate())
    done, _ = await asyncio.wait({task}, timeout=WAIT)
    if not done:
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, err = await task
        raise AssertionError(f"the coordinator did not end: {err.decode()}")
    _, err = task.result()
    assert process.returncode is not None
    text = err.decode()
    assert "Traceback" not in text, text
    return process.returncode, text


def lines(output: Path) -> list[dict[str, Any]]:
    if not output.exists():
        return []
    return [json.loads(line) for line in output.read_text().splitlines()]


def check_complete(sb: Sandbox, output: Path, rows: int) -> dict[int, dict[str, Any]]:
    """One line per input, no recipient sent twice, and the lines agree with the sandbox."""
    found = lines(output)
    per_index = collections.Counter(line["index"] for line in found)
    assert sorted(per_index) == list(range(rows)), "an input has no results line"
    assert max(per_index.values()) == 1, "an input has two results lines"
    sends = collections.Counter(m.to for m in sb.messages)
    assert not sends or max(sends.values()) == 1, "a recipient got two messages"
    by_index = {line["index"]: line for line in found}
    for index, line in by_index.items():
        assert line["to"] == recipient(index)
        if line["ok"]:
            assert recipient(index) in sends, line
        elif line["status"] == "failed":
            assert recipient(index) not in sends, f"a row recorded as failed was sent: {line}"
    return by_index


async def pins_in_redis(redis: Redis, rows: int) -> list[str]:
    """Every pin found in any key or value of the Redis (strings, hashes, lists, sets, sorted
    sets, streams): the places it was found."""
    pins = [pin_for(i).encode() for i in range(rows)]
    found = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        blobs: list[bytes] = [key]
        if kind == "string":
            blobs.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                blobs += [field, value]
        elif kind == "list":
            blobs += await redis.lrange(key, 0, -1)
        elif kind == "set":
            blobs += list(await redis.smembers(key))
        elif kind == "zset":
            blobs += await redis.zrange(key, 0, -1)
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                blobs.append(entry_id)
                for field, value in fields.items():
                    blobs += [field, value]
        else:
            raise AssertionError(f"a key of a type the scan does not read: {key!r} ({kind})")
        for blob in blobs:
            found += [f"{key!r}" for pin in pins if pin in blob]
    return found
