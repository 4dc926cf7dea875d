"""Helpers of the reliability tests: sandbox set-up and the "nothing left behind" checks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from internals import transport_of

import routee_viber_async
from routee_viber_async import (
    CreateTemplate,
    RetryPolicy,
    RouteeViberClient,
    SendMessage,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox

LIBRARY = Path(routee_viber_async.__file__).parent
SANDBOX_CODE = LIBRARY / "sandbox"


def pin_for(index: int) -> str:
    """A pin no number, seq, id or token can contain by chance."""
    return f"P{index:05d}Q"


def recipient(index: int) -> str:
    return f"+3069{index:08d}"


async def otp_template(sb: Sandbox) -> str:
    """Create an OTP template (``{{pin}}``, ``{{minutes}}``) and approve it; its id."""
    definition = CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin"), TemplateParam("minutes")],
        [TemplateLocale("en", "Code {{pin}}, valid {{minutes}} min")],
        [VarExample("pin", "123456"), VarExample("minutes", "5")],
    )
    async with client_for(sb) as client:
        return (await approved_template(client, sb, definition)).template_id


def client_for(sb: Sandbox, **options: Any) -> RouteeViberClient:
    options.setdefault("retry", RetryPolicy.no_wait(max_attempts=3))
    return RouteeViberClient(
        credentials=sb.credentials, base_url=sb.base_url, auth_url=sb.auth_url, **options
    )


def messages(sb: Sandbox, template_id: str, count: int, start: int = 0) -> list[SendMessage]:
    return [
        SendMessage(
            sb.sender_id, recipient(i), template_id, "en", {"pin": pin_for(i), "minutes": "5"}
        )
        for i in range(start, start + count)
    ]


def library_tasks() -> list[asyncio.Task[Any]]:
    """Tasks other than the current one that are running the client's code (not the sandbox's)."""
    found = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task() or task.done():
            continue
        for frame in task.get_stack():
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(LIBRARY) and not path.is_relative_to(SANDBOX_CODE):
                found.append(task)
                break
        else:
            coro = task.get_coro()
            code = getattr(coro, "cr_code", None)
            path = Path(code.co_filename) if code is not None else SANDBOX_CODE
            if path.is_relative_to(LIBRARY) and not path.is_relative_to(SANDBOX_CODE):
                found.append(task)
    return found


async def token_fetch_done(client: RouteeViberClient, within: float = 5.0) -> None:
    """Wait until a token fetch in flight has ended: it runs in a task of its own, which the
    cancellation of its callers leaves running (its token serves the next calls)."""
    async with asyncio.timeout(within):
        await transport_of(client).tokens.wait_fetched()


def assert_idle(client: RouteeViberClient) -> None:
    """Nothing of the client is busy: no task, slot, connection or token lock is held."""
    assert library_tasks() == []
    shared = transport_of(client)
    semaphore = shared.semaphore
    assert semaphore._value == shared.max_concurrency, "a semaphore slot was not released"
    assert not semaphore._waiters, "a task still waits for a slot"
    assert not shared.tokens.fetching, "a token fetch is still in flight"
    session = shared.session
    if session is not None and not session.closed:
        connector = session.connector
        assert connector is not None
        assert not connector._acquired, "a connection was not released to the pool"


def assert_closed(client: RouteeViberClient) -> None:
    """The client is closed and so is everything it owned."""
    transport = client._transport
    assert transport.closed
    assert client.closed
    session = transport.session
    if session is not None:
        assert session.closed
        connector = session.connector
        assert connector is None or connector.closed


async def settle(rounds: int = 5) -> None:
    """Let callbacks scheduled by a cancellation (async generator finalizers, ...) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def assert_no_tasks_left() -> None:
    """Only the test's own task is left on the loop."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == [], others
