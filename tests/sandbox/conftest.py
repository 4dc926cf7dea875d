"""Fixtures of the sandbox tests: raw HTTP against a running sandbox, and callback receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import FAST, Api, Receiver

from routee_viber_async.sandbox import Sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(routee_sandbox: Sandbox, http: aiohttp.ClientSession) -> Api:
    """Raw API calls against the plugin's ``routee_sandbox``."""
    return Api(routee_sandbox, http)


@pytest.fixture
async def make_api(
    http: aiohttp.ClientSession,
) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    """``await make_api(**options)``: a fresh sandbox with ``FAST`` plus ``options``."""
    sandboxes: list[Sandbox] = []

    async def make(**options: Any) -> Api:
        sandbox = Sandbox(**{**FAST, **options})
        sandboxes.append(sandbox)
        await sandbox.start()
        return Api(sandbox, http)

    yield make
    for sandbox in sandboxes:
        await sandbox.close()


@pytest.fixture
async def make_receiver() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """``await make_receiver(fail_first=0)``: a started callback receiver."""
    receivers: list[Receiver] = []

    async def make(fail_first: int = 0) -> Receiver:
        receiver = Receiver(fail_first)
        receivers.append(receiver)
        return await receiver.start()

    yield make
    for receiver in receivers:
        await receiver.close()


@pytest.fixture
async def receiver(make_receiver: Callable[..., Awaitable[Receiver]]) -> Receiver:
    return await make_receiver()
