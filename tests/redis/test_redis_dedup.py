"""``RedisDeduplicator``: one callback handled once by every receiver sharing a Redis."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from routee_viber_async import DeliveryCallback
from routee_viber_async.integrations.redis import (
    DeduplicatorUnavailableError,
    RedisDeduplicator,
)
from routee_viber_async.webhooks import WebhookReceiver

HERE = Path(__file__).parent
SECRET = "dedup-test-secret"


def delivery(seed_examples: dict[str, Any], tracking_id: str) -> bytes:
    payload = dict(seed_examples["delivery_callback"], trackingId=tracking_id)
    return json.dumps(payload).encode()


async def test_seen_claims_a_key_once_and_forget_releases_it(redis: Redis, key: str) -> None:
    dedup = RedisDeduplicator(redis, ttl=60, prefix=key + ":")
    assert not await dedup.contains(("delivery", "t1", "DELIVERED"))
    assert await dedup.seen(("delivery", "t1", "DELIVERED")) is False
    assert await dedup.seen(("delivery", "t1", "DELIVERED")) is True
    assert await dedup.contains(("delivery", "t1", "DELIVERED"))
    assert 0 < await redis.ttl(key + ":delivery:t1:DELIVERED") <= 60
    await dedup.forget(("delivery", "t1", "DELIVERED"))
    assert await dedup.seen(("delivery", "t1", "DELIVERED")) is False


async def test_two_receivers_handle_a_callback_once_and_a_failure_lets_the_retry_in(
    redis: Redis, key: str, seed_examples: dict[str, Any]
) -> None:
    handled: list[str] = []
    failing = True

    async def on_delivery(callback: DeliveryCallback) -> None:
        if failing:
            raise RuntimeError("the handler's database is down")
        handled.append(callback.tracking_id)

    receivers = [
        WebhookReceiver(on_delivery=on_delivery, deduplicator=RedisDeduplicator(redis, prefix=key))
        for _ in range(2)
    ]
    body = delivery(seed_examples, "t-1")
    answer = await receivers[0].dispatch("delivery", body)
    assert answer.status == 500  # failed: the key is released
    failing = False
    answers = await asyncio.gather(*(r.dispatch("delivery", body) for r in receivers * 2))
    assert sorted(a.status for a in answers) == [200] * 4
    assert sum(1 for a in answers if a.body.get("duplicate")) == 3
    assert handled == ["t-1"]


async def test_redis_down_answers_503_without_calling_the_handler(
    seed_examples: dict[str, Any], unused_port: int
) -> None:
    called = []
    redis = Redis(host="127.0.0.1", port=unused_port)
    dedup = RedisDeduplicator(redis, timeout=1)
    receiver = WebhookReceiver(on_delivery=called.append, deduplicator=dedup)
    answer = await receiver.dispatch("delivery", delivery(seed_examples, "t-2"))
    assert answer.status == 503
    assert answer.body == {"ok": False, "error": "deduplication_unavailable"}
    assert called == []
    with pytest.raises(DeduplicatorUnavailableError, match=str(unused_port)):
        await dedup.seen(("k",))
    await redis.aclose()


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def uvicorn(redis_url: str, log: str, port: int, workers: int) -> AsyncIterator[None]:
    """``uvicorn dedup_app:app --workers N`` on ``port``, until it answers."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DEDUP_LOG": log,
        "CALLBACK_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "dedup_app:app",
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        env=env,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:  # up once it answers (a GET on the POST route: 405)
                try:
                    async with http.get(f"http://127.0.0.1:{port}/routee/delivery") as resp:
                        if resp.status == 405:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            async with asyncio.timeout(20):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def post_each_callback_to(
    urls: list[str], seed_examples: dict[str, Any], count: int, copies: int
) -> list[str]:
    """POST ``count`` callbacks, each ``copies`` times to each URL, at once, each on its own
    connection (so that the kernel spreads them over the workers); the ids sent."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    connector = aiohttp.TCPConnector(force_close=True, limit=50)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post(url: str, tracking_id: str) -> int:
            async with http.post(
                f"{url}/routee/delivery?token={SECRET}",
                data=delivery(seed_examples, tracking_id),
                headers={"Content-Type": "application/json"},
            ) as resp:
                return resp.status

        statuses = await asyncio.gather(
            *(post(url, i) for i in ids for url in urls for _ in range(copies))
        )
    assert set(statuses) == {200}
    return ids


async def handled_by(redis: Redis, log: str) -> list[tuple[str, str]]:
    entries = await redis.lrange(log, 0, -1)
    return [tuple(e.decode().split()) for e in entries]  # type: ignore[misc]


async def test_two_uvicorn_workers_behind_one_port_handle_each_callback_once(
    redis: Redis, redis_url: str, key: str, seed_examples: dict[str, Any], unused_port: int
) -> None:
    async with uvicorn(redis_url, key, unused_port, workers=2):
        ids = await post_each_callback_to(
            [f"http://127.0.0.1:{unused_port}"], seed_examples, count=60, copies=3
        )
    handled = await handled_by(redis, key)
    assert Counter(tracking_id for _, tracking_id in handled) == dict.fromkeys(ids, 1)


async def test_two_processes_given_the_same_callbacks_handle_each_once(
    redis: Redis, redis_url: str, key: str, seed_examples: dict[str, Any]
) -> None:
    # Deterministic across processes: every callback goes to both, at the same time.
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    async with (
        uvicorn(redis_url, key, ports[0], workers=1),
        uvicorn(redis_url, key, ports[1], workers=1),
    ):
        ids = await post_each_callback_to(
            [f"http://127.0.0.1:{port}" for port in ports], seed_examples, count=40, copies=2
        )
    handled = await handled_by(redis, key)
    assert Counter(tracking_id for _, tracking_id in handled) == dict.fromkeys(ids, 1)
