"""Cancellation and shutdown at random points: nothing is left behind, nothing is sent twice.

Each run cancels ``send_many`` or ``tracking.wait``, or closes the client, at a random moment
while the sandbox injects faults (slow replies, 429 with Retry-After, 500s after acceptance,
revoked tokens), so that the cut lands in every state a call can be in: fetching a token,
waiting for a slot, in the HTTP exchange, sleeping before a retry, replaying after a refresh.
Afterwards: no task of the client is left, every semaphore slot and pooled connection is back,
the token lock is free, a closed client has closed its session and connector, and the sandbox
never accepted a ``seq`` twice (``retry_ambiguous_sends=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
from reliability_helpers import (
    assert_closed,
    assert_idle,
    assert_no_tasks_left,
    client_for,
    library_tasks,
    messages,
    otp_template,
    settle,
    token_fetch_done,
)

from routee_viber_async import (
    RetryPolicy,
    RouteeError,
    RouteeViberClient,
    SendOutcome,
    TransportError,
)
from routee_viber_async.sandbox import Sandbox

FAULTS: dict[str, float] = {
    "slow_reply": 0.15,
    "slow_reply_delay": 0.15,
    "rate_limit": 0.1,
    "retry_after": 0.05,
    "server_error": 0.05,
    "service_unavailable": 0.05,
    "drop_connection": 0.05,
    "token_expiry": 0.05,
}
SEEDS = range(5)


def _client(sb: Sandbox, **options: Any) -> RouteeViberClient:
    return client_for(
        sb,
        max_concurrency=6,
        timeout=1.0,
        forbidden_refresh_after=0.0,
        retry=RetryPolicy(
            max_attempts=4,
            initial_backoff=0.01,
            max_backoff=0.05,
            max_retry_after=0.1,
            retry_ambiguous_sends=False,
            budget=None,
        ),
        **options,
    )


async def _cancel_after(task: asyncio.Task[Any], delay: float) -> None:
    await asyncio.sleep(delay)
    task.cancel()
    # Under injected faults the call may have failed (with a typed error) before the cut.
    with contextlib.suppress(asyncio.CancelledError, RouteeError):
        await task


def _closed_error(error: BaseException | None) -> bool:
    """A call made on a client already closed: ``RuntimeError`` (a programming error)."""
    return isinstance(error, RuntimeError) and "closed" in str(error)


def _check_at_most_once(sb: Sandbox, outcomes: list[SendOutcome]) -> None:
    assert sb.duplicate_seq_count == 0
    recipients = [m.to for m in sb.messages]
    assert len(recipients) == len(set(recipients))
    accepted = {m.seq for m in sb.messages}
    for outcome in outcomes:
        if outcome.ok:
            assert outcome.request.seq in accepted
        elif _closed_error(outcome.error):
            assert outcome.attempts == 0
            assert outcome.request.seq not in accepted
        else:
            assert isinstance(outcome.error, RouteeError), repr(outcome.error)
            if not outcome.outcome_unknown:
                assert outcome.request.seq not in accepted


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancel_send_many_at_a_random_point(seed: int) -> None:
    rng = random.Random(seed)
    async with Sandbox(moderation_delay=None, delivery_delay=0.05, seed=seed) as sb:
        template_id = await otp_template(sb)
        sb.set_faults(FAULTS)
        outcomes: list[SendOutcome] = []
        async with _client(sb) as client:

            async def consume() -> None:
                async for outcome in client.messages.send_many(
                    messages(sb, template_id, 150), concurrency=6
                ):
                    outcomes.append(outcome)
                    if rng.random() < 0.3:  # so that a cancellation may land in the body too
                        await asyncio.sleep(0.002)

            delay = 0.0 if seed == 0 else rng.uniform(0.0, 0.5)  # 0: during the token fetch
            await _cancel_after(asyncio.create_task(consume()), delay)
            await settle()
            await token_fetch_done(client)
            assert_idle(client)
            _check_at_most_once(sb, outcomes)
            assert len(outcomes) < 150, "the run ended before it was cancelled"
            # The client is still usable after a cancelled fan-out.
            sb.set_faults(None)
            (again,) = [
                o async for o in client.messages.send_many(messages(sb, template_id, 1, 900))
            ]
            assert again.ok, again.error
        assert_closed(client)
    assert_no_tasks_left()


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancel_tracking_wait_at_a_random_point(seed: int) -> None:
    rng = random.Random(seed)
    async with Sandbox(moderation_delay=None, delivery_delay=0.3, seed=seed) as sb:
        template_id = await otp_template(sb)
        async with _client(sb) as client:
            results = [await client.messages.send(m) for m in messages(sb, template_id, 3)]
            sb.set_faults(FAULTS)
            waits = [
                asyncio.create_task(client.tracking.wait(r.tracking_id, poll_interval=0.01))
                for r in results
            ]
            await asyncio.gather(*(_cancel_after(w, rng.uniform(0.0, 0.4)) for w in waits))
            await settle()
            await token_fetch_done(client)
            assert_idle(client)
            sb.set_faults(None)
            record = await client.tracking.wait(results[0].tracking_id, timeout=5)
            assert record.is_final
        assert_closed(client)
    assert_no_tasks_left()


@pytest.mark.parametrize("seed", SEEDS)
async def test_close_the_client_with_sends_in_flight(seed: int) -> None:
    rng = random.Random(seed)
    async with Sandbox(moderation_delay=None, delivery_delay=0.05, seed=seed) as sb:
        template_id = await otp_template(sb)
        sb.set_faults(FAULTS)
        client = _client(sb)
        singles = [
            asyncio.create_task(client.messages.send(m))
            for m in messages(sb, template_id, 10, start=500)
        ]
        outcomes: list[SendOutcome] = []

        async def consume() -> None:
            async for outcome in client.messages.send_many(
                messages(sb, template_id, 60), concurrency=6
            ):
                outcomes.append(outcome)

        fan_out = asyncio.create_task(consume())
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        await client.close()
        assert_closed(client)
        # Every call in flight ends promptly with a typed error, and is not retried.
        _, pending = await asyncio.wait([fan_out, *singles], timeout=5)
        assert not pending, "calls still running after close()"
        await fan_out
        for single in singles:
            error = single.exception()
            assert error is None or isinstance(error, RouteeError) or _closed_error(error)
        await settle()
        assert library_tasks() == []
        assert_idle(client)
        _check_at_most_once(sb, outcomes)
        # Calls cut by close() are not retried; calls begun after it never reach the sandbox.
        cut = [o for o in outcomes if isinstance(o.error, TransportError)]
        assert all(o.attempts <= 4 for o in cut)
        assert len(sb.messages) <= len([o for o in outcomes if o.attempts]) + len(singles)
    assert_no_tasks_left()
