"""Benchmark 3: a token-refresh storm.

A client fetches a token that lives two seconds, waits until it has expired (on both sides),
then starts ``calls`` sends at once. The figures: how many times the server's token endpoint was
hit (one refresh is the target), errors, and the time until every call had its answer, next to
the same burst sent with a valid token (the refresh's share of the drain).

A second storm has the server revoke every token while the client still holds one it believes
valid: every call in flight gets a 401, and the 401s must cause one refresh between them
(``TokenManager.invalidate``), each call replaying once.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import attrs

from routee_viber_async import ClientCredentials, RouteeViberClient

from ._common import Server, admin, message
from ._server import APP_ID, APP_SECRET

__all__ = ["StormResult", "run_storm"]

TOKEN_LIFETIME = 2.0


@attrs.frozen
class StormResult:
    """The figures of the storms (milliseconds for times)."""

    calls: int
    concurrency: int
    expiry_refreshes: int
    expiry_errors: int
    expiry_drain_ms: float
    valid_drain_ms: float
    revoked_refreshes: int
    revoked_unauthorized: int
    revoked_errors: int
    revoked_drain_ms: float


async def _burst(client: RouteeViberClient, calls: int) -> tuple[int, float]:
    messages = [message(i) for i in range(calls)]
    started = time.perf_counter()
    results = await asyncio.gather(
        *[client.messages.send(m) for m in messages], return_exceptions=True
    )
    drain = (time.perf_counter() - started) * 1000
    return sum(isinstance(r, BaseException) for r in results), drain


async def run_storm(server: Server, *, calls: int = 1000, concurrency: int = 100) -> StormResult:
    """Run both storms against ``server``."""
    async with aiohttp.ClientSession() as control:
        await admin(control, server, "config", expires_in=TOKEN_LIFETIME)
        try:
            async with RouteeViberClient(
                credentials=ClientCredentials(APP_ID, APP_SECRET),
                base_url=server.base_url,
                auth_url=server.auth_url,
                max_concurrency=concurrency,
            ) as client:
                # A valid token: the reference burst, and a warm pool.
                await _burst(client, calls)
                _, valid_drain = await _burst(client, calls)
                # Let the short-lived token expire on both sides, then the storm.
                await client.messages.send(message(0))
                await asyncio.sleep(TOKEN_LIFETIME + 0.2)
                await admin(control, server, "config", expires_in=3600)
                before = await admin(control, server, "stats")
                expiry_errors, expiry_drain = await _burst(client, calls)
                after = await admin(control, server, "stats")
                expiry_refreshes = after["token_fetches"] - before["token_fetches"]
                # Revoked server-side while the client believes its token valid: 401s.
                await admin(control, server, "revoke")
                before = await admin(control, server, "stats")
                revoked_errors, revoked_drain = await _burst(client, calls)
                after = await admin(control, server, "stats")
        finally:
            await admin(control, server, "config", expires_in=3600)
    return StormResult(
        calls=calls,
        concurrency=concurrency,
        expiry_refreshes=expiry_refreshes,
        expiry_errors=expiry_errors,
        expiry_drain_ms=expiry_drain,
        valid_drain_ms=valid_drain,
        revoked_refreshes=after["token_fetches"] - before["token_fetches"],
        revoked_unauthorized=after["unauthorized"] - before["unauthorized"],
        revoked_errors=revoked_errors,
        revoked_drain_ms=revoked_drain,
    )
