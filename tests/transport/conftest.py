"""Fixtures of the transport tests: a fake Routee on loopback and a transport factory."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from transport_helpers import APP_ID, APP_SECRET, FakeRoutee, MakeTransport

from routee_viber_async._auth import ClientCredentials
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import routee_status_error
from routee_viber_async._transport import Transport


@pytest.fixture
async def routee() -> AsyncIterator[FakeRoutee]:
    fake = FakeRoutee()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("/api"))
    fake.auth_url = str(server.make_url("/oauth/token"))
    try:
        yield fake
    finally:
        fake.release.set()
        if fake.auth_gate is not None:
            fake.auth_gate.set()
        await server.close()


@pytest.fixture
async def make_transport(routee: FakeRoutee) -> AsyncIterator[MakeTransport]:
    """Build transports against the fake (no-wait retries by default); closes them after."""
    made: list[Transport] = []

    def make(**options: Any) -> Transport:
        options.setdefault("token_provider", ClientCredentials(APP_ID, APP_SECRET))
        options.setdefault("base_url", routee.base_url)
        options.setdefault("auth_url", routee.auth_url)
        options.setdefault("retry", RetryPolicy.no_wait())
        options.setdefault("make_status_error", routee_status_error)
        transport = Transport(**options)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port
