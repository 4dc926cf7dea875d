"""Fixtures of the fan-out tests that go over loopback: a sandbox, its template, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fanout_helpers import MakeClient

from routee_viber_async import (
    RetryPolicy,
    RouteeViberClient,
    Template,
)
from routee_viber_async.sandbox import Sandbox


@pytest.fixture
def routee_sandbox_options() -> dict[str, Any]:
    """The plugin's ``routee_sandbox``: moderation only by ``approve()``, fast deliveries."""
    return {"moderation_delay": None, "delivery_delay": 0.02, "seed": 5}


@pytest.fixture
def sandbox(routee_sandbox: Sandbox) -> Sandbox:
    return routee_sandbox


@pytest.fixture
async def make_client(sandbox: Sandbox) -> AsyncIterator[MakeClient]:
    """``make_client(**options)``: a client of the sandbox, retrying without waits."""
    made: list[RouteeViberClient] = []

    def make(**options: Any) -> RouteeViberClient:
        options.setdefault("retry", RetryPolicy.no_wait())
        options.setdefault("base_url", sandbox.base_url)
        client = RouteeViberClient(
            credentials=sandbox.credentials, auth_url=sandbox.auth_url, **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def template(routee_template: Template) -> Template:
    """An approved OTP template of the sandbox's sender, with one parameter: ``pin``."""
    return routee_template
