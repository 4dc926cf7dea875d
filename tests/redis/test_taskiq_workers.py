"""``integrations.taskiq`` end to end: the example's tasks, real ``taskiq worker`` processes,
the real Redis and the sandbox."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from taskiq import InMemoryBroker

from routee_viber_async import ConfigurationError, Template
from routee_viber_async.integrations.taskiq import RouteeClient, setup_routee
from routee_viber_async.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
RATE = 10  # sends per second, for every worker together (burst 1)
TASKS = 30


def worker_env(sandbox: Sandbox, redis_url: str, template_id: str = "t") -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "ROUTEE_RATE": str(RATE),
        "ROUTEE_BASE_URL": sandbox.base_url,
        "ROUTEE_AUTH_URL": sandbox.auth_url,
        "ROUTEE_APPLICATION_ID": sandbox.credentials.application_id,
        "ROUTEE_APPLICATION_SECRET": sandbox.credentials.application_secret,
        "ROUTEE_SENDER_ID": sandbox.sender_id,
        "ROUTEE_OTP_TEMPLATE_ID": template_id,
    }


async def stop_workers(workers: asyncio.subprocess.Process) -> None:
    """Ask ``taskiq worker`` to stop (SIGINT, as Ctrl-C); kill its group if it lingers.

    (taskiq 0.13 with taskiq-redis 1.2 may wait on the stream read it had in flight when told
    to stop; the closing of clients on WORKER_SHUTDOWN is tested in-process below.)
    """
    workers.send_signal(signal.SIGINT)
    try:
        async with asyncio.timeout(10):
            await workers.wait()
    except TimeoutError:
        os.killpg(workers.pid, signal.SIGKILL)
        await workers.wait()


async def test_workers_send_with_one_client_each_under_the_shared_limit(
    routee_sandbox: Sandbox,
    routee_template: Template,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = worker_env(routee_sandbox, redis_url, routee_template.template_id)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT))
    example = importlib.import_module("examples.taskiq_worker")
    broker = example.broker
    await broker.startup()  # the consumer group exists before anything is sent
    workers = None
    try:
        tasks = [await example.send_otp.kiq(f"+3069{i:08d}") for i in range(TASKS)]
        workers = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "taskiq",
            "worker",
            "examples.taskiq_worker:broker",
            "--workers",
            "2",
            "--wait-tasks-timeout",
            "2",
            "--shutdown-timeout",
            "2",
            cwd=ROOT,
            start_new_session=True,  # its worker processes in a group of their own
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
        )
        results = [await task.wait_result(timeout=60) for task in tasks]
    finally:
        await broker.shutdown()
        if workers is not None:
            await stop_workers(workers)

    assert [r.is_err for r in results] == [False] * TASKS
    answers = [r.return_value for r in results]
    # Every task ran and sent through the sandbox.
    sent = {m.tracking_id for m in routee_sandbox.messages}
    assert {a["tracking_id"] for a in answers} <= sent
    assert len({a["tracking_id"] for a in answers}) == TASKS
    # One client per worker process (at most 2 processes: --workers 2).
    clients = defaultdict(set)
    for a in answers:
        clients[a["worker_pid"]].add(a["client_id"])
    assert 1 <= len(clients) <= 2
    assert all(len(ids) == 1 for ids in clients.values())
    # The shared limit: 30 sends at 10/s (burst 1) need 2.9 s between the first grant and the
    # last, whichever worker made them; the send times seen after each answer can shrink that
    # span only by one answer's latency (1 s of slack, on a busy machine).
    times = sorted(a["sent_at"] for a in answers)
    assert times[-1] - times[0] >= (TASKS - 1) / RATE - 1.0


async def test_a_task_without_setup_routee_is_told_so() -> None:
    broker = InMemoryBroker()

    @broker.task
    async def needs_client(client: RouteeClient) -> None:
        raise AssertionError("never called")

    await broker.startup()
    try:
        task = await needs_client.kiq()
        result = await task.wait_result(timeout=10)
    finally:
        await broker.shutdown()
    assert result.is_err
    assert isinstance(result.error, ConfigurationError)
    assert "setup_routee" in str(result.error)


async def test_setup_routee_makes_a_client_at_worker_start_and_closes_it_at_stop(
    routee_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in worker_env(routee_sandbox, "redis://unused").items():
        monkeypatch.setenv(name, value)
    broker = InMemoryBroker()  # runs its tasks in this process, with the worker's events
    setup_routee(broker, max_concurrency=7)
    seen = []

    @broker.task
    async def use(client: RouteeClient) -> int:
        seen.append(client)
        return client._transport.max_concurrency

    await broker.startup()
    try:
        first = await (await use.kiq()).wait_result(timeout=10)
        second = await (await use.kiq()).wait_result(timeout=10)
    finally:
        await broker.shutdown()
    assert first.return_value == second.return_value == 7
    assert seen[0] is seen[1]
    assert seen[0].closed


async def test_a_worker_whose_redis_is_unreachable_fails_at_start(
    routee_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.asyncio import Redis

    from routee_viber_async import RateLimiterUnavailableError
    from routee_viber_async.integrations.redis import RedisRateLimiter

    for name, value in worker_env(routee_sandbox, "redis://unused").items():
        monkeypatch.setenv(name, value)
    redis = Redis(host="127.0.0.1", port=9)  # nothing listens
    broker = InMemoryBroker()
    setup_routee(broker, rate_limiter=RedisRateLimiter(redis, "k", 10, timeout=1))
    with pytest.raises(RateLimiterUnavailableError, match=r"127\.0\.0\.1:9"):
        await broker.startup()
    await broker.shutdown()
    await redis.aclose()
