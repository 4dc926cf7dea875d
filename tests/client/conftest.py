"""Fixtures of the client tests: aioresponses mocks the HTTP boundary, a client points at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aioresponses import aioresponses
from client_helpers import AUTH, BASE, TOKEN, install_compat

from routee_viber_async import RetryPolicy, RouteeViberClient, StaticToken


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """Every aiohttp request of the test goes to this mock (unmatched ones fail)."""
    install_compat(monkeypatch)
    with aioresponses() as mock:
        yield mock


@pytest.fixture
async def client(mocked: aioresponses) -> AsyncIterator[RouteeViberClient]:
    """A client with a static token and retries that never sleep."""
    async with RouteeViberClient(
        credentials=StaticToken(TOKEN),
        base_url=BASE,
        auth_url=AUTH,
        retry=RetryPolicy.no_wait(),
    ) as client:
        yield client
