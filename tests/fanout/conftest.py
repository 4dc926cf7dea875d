"""Fixtures of the fan-out tests that go over loopback: a sandbox, its template, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from routee_viber_async import (
    CreateTemplate,
    RetryPolicy,
    RouteeViberClient,
    Template,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async.sandbox import Sandbox

MakeClient = Callable[..., RouteeViberClient]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(moderation_delay=None, delivery_delay=0.02, seed=5) as sb:
        yield sb


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
async def template(sandbox: Sandbox, make_client: MakeClient) -> Template:
    """An approved OTP template of the sandbox's sender, with one parameter: ``pin``."""
    created = await make_client().templates.create(
        sandbox.sender_id,
        CreateTemplate(
            TemplateCategory.OTP,
            [TemplateParam("pin")],
            [TemplateLocale("en", "Your code is {{pin}}.")],
            [VarExample("pin", "123456")],
        ),
    )
    sandbox.approve(created.template_id)
    return created
