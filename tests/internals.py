"""Internal accessors for the tests: the one place that reaches into a client or a sandbox.

Internal, for the tests only: what they read of a client's transport (its session, token
cache, semaphore, retry budget) goes through :func:`transport_of` and the transport's
read-only properties, never through its private state.
"""

from __future__ import annotations

from aiohttp import web

from routee_viber_async import RouteeViberClient, SendMessage, SendResult
from routee_viber_async._transport import Transport
from routee_viber_async.sandbox import Sandbox


def transport_of(client: RouteeViberClient) -> Transport:
    """The transport a client (or a view of it) sends through."""
    return client._transport


async def send_counted(client: RouteeViberClient, message: SendMessage) -> tuple[SendResult, int]:
    """Send ``message`` and also return how many HTTP attempts it took (through ``send_many``,
    whose outcomes carry the count)."""
    [outcome] = [o async for o in client.messages.send_many([message], concurrency=1)]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    return outcome.result, outcome.attempts


def sandbox_app(sandbox: Sandbox) -> web.Application:
    """A second aiohttp application on a sandbox's own state (for aiohttp's test client)."""
    from routee_viber_async.sandbox._app import build_app

    return build_app(sandbox._ctx)
