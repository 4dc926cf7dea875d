"""Fixtures of the integration tests: the client against a real sandbox over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from integration_helpers import FAST, MakeClient, MakeSandbox, Receiver

from routee_viber_async import RetryPolicy, RouteeViberClient
from routee_viber_async.sandbox import Sandbox


@pytest.fixture
async def make_sandbox() -> AsyncIterator[MakeSandbox]:
    """``await make_sandbox(**options)``: a started sandbox with ``FAST`` plus ``options``."""
    made: list[Sandbox] = []

    async def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(**{**FAST, **options})
        made.append(sandbox)
        return await sandbox.start()

    yield make
    for sandbox in made:
        await sandbox.close()


@pytest.fixture
async def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return await make_sandbox()


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(sandbox, **options)``: a client of that sandbox (closed after the test)."""
    made: list[RouteeViberClient] = []

    def make(sandbox: Sandbox, **options: Any) -> RouteeViberClient:
        options.setdefault("credentials", sandbox.credentials)
        options.setdefault("retry", RetryPolicy.no_wait())
        client = RouteeViberClient(base_url=sandbox.base_url, auth_url=sandbox.auth_url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def client(sandbox: Sandbox, make_client: MakeClient) -> RouteeViberClient:
    return make_client(sandbox)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.close()
