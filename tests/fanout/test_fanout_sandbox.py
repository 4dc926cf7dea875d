"""``send_many`` through a real client against the sandbox: semaphore, retries, seq, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
import pytest
from fanout_helpers import MakeClient, fan_out_workers, message, settle
from internals import transport_of

from routee_viber_async import (
    NotFoundError,
    RetryPolicy,
    SendMessage,
    SendOutcome,
    Template,
    TransportError,
    ValidationError,
)
from routee_viber_async.sandbox import Sandbox


def messages_for(sandbox: Sandbox, template: Template, count: int) -> list[SendMessage]:
    return [
        message(i, sender_info_tracking_id=sandbox.sender_id, template_id=template.template_id)
        for i in range(count)
    ]


async def test_injected_503s_are_retried_with_the_same_seq(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    client = make_client(max_concurrency=8, retry=RetryPolicy.no_wait(max_attempts=20))
    sandbox.inject_fault("service_unavailable", times=15)
    inputs = messages_for(sandbox, template, 40)

    outcomes = [o async for o in client.messages.send_many(inputs, template=template)]

    assert len(outcomes) == 40
    assert all(o.ok for o in outcomes)
    assert sandbox.fault_counts["service_unavailable"] == 15
    assert sum(o.attempts - 1 for o in outcomes) == 15  # each 503 cost one more attempt
    assert any(o.attempts > 1 for o in outcomes)
    assert sandbox.duplicate_seq_count == 0
    stored = {m.to: m.seq for m in sandbox.messages}
    assert len(stored) == 40
    for o in outcomes:
        assert o.result is not None
        assert o.result.seq == o.request.seq
        assert stored[o.request.to] == o.request.seq


async def test_an_ambiguous_failure_is_retried_with_the_same_seq(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    """500s after acceptance: the sandbox stores every attempt, so the retries show their seq
    (at-least-once, opted in)."""
    client = make_client(retry=RetryPolicy.no_wait(retry_ambiguous_sends=True))
    sandbox.inject_fault("server_error", times=3, after_accept=True)
    inputs = messages_for(sandbox, template, 3)

    outcomes = {o.index: o async for o in client.messages.send_many(inputs, concurrency=1)}

    assert all(o.ok for o in outcomes.values())
    assert outcomes[0].attempts == 4
    assert outcomes[1].attempts == outcomes[2].attempts == 1
    first = [m.seq for m in sandbox.messages if m.to == inputs[0].to]
    assert first == [outcomes[0].request.seq] * 4  # one seq across the four attempts
    assert sandbox.duplicate_seq_count == 3


async def test_the_clients_semaphore_bounds_the_requests(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    in_flight = most = 0

    async def started(*_: Any) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)

    async def ended(*_: Any) -> None:
        nonlocal in_flight
        in_flight -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    trace.on_request_exception.append(ended)
    sandbox.set_faults({"slow_reply": 1.0, "slow_reply_delay": 0.03})
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = make_client(max_concurrency=3, session=session)
        inputs = messages_for(sandbox, template, 12)

        async def fan_out(part: list[SendMessage]) -> list[SendOutcome]:
            return [o async for o in client.messages.send_many(part, concurrency=3)]

        # Two fan-outs at once (a fan-out alone never runs more workers than the slots).
        halves = await asyncio.gather(fan_out(inputs[:6]), fan_out(inputs[6:]))
    outcomes = [o for half in halves for o in half]
    assert len(outcomes) == 12
    assert all(o.ok and o.attempts == 1 for o in outcomes)
    assert most == 3  # 6 workers, 3 slots


async def test_every_kind_of_failure_is_an_outcome_and_the_rest_go_on(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    client = make_client(retry=RetryPolicy.no_wait(max_attempts=3, retry_ambiguous_sends=True))
    valid = messages_for(sandbox, template, 8)
    inputs: list[Any] = [
        valid[0],  # its three attempts meet the three dropped connections below
        attrs.evolve(valid[1], to="12"),  # refused locally
        attrs.evolve(valid[2], template_params={"pin": "1", "x": "2"}),  # refused by Routee
        attrs.evolve(valid[3], template_id="no-such-template"),  # 404
        SimpleNamespace(to=valid[4].to),  # not a SendMessage
        *valid[5:],
    ]
    sandbox.inject_fault("drop_connection", times=3)

    outcomes = {o.index: o async for o in client.messages.send_many(inputs, concurrency=1)}

    assert sorted(outcomes) == list(range(8))
    dropped = outcomes[0]
    assert isinstance(dropped.error, TransportError)
    assert dropped.attempts == 3
    assert dropped.outcome_unknown
    local = outcomes[1]
    assert isinstance(local.error, ValidationError)
    assert local.error.status is None
    assert local.attempts == 0
    server = outcomes[2]
    assert isinstance(server.error, ValidationError)
    assert server.error.status == 400
    assert server.attempts == 1
    assert not server.outcome_unknown
    missing = outcomes[3]
    assert isinstance(missing.error, NotFoundError)
    assert missing.attempts == 1
    assert isinstance(outcomes[4].error, ValidationError)
    assert outcomes[4].attempts == 0
    assert all(outcomes[i].ok for i in (5, 6, 7))
    assert sorted(m.to for m in sandbox.messages) == [v.to for v in valid[5:]]


async def test_break_cancels_the_requests_in_flight_and_frees_the_slots(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    client = make_client(max_concurrency=4)
    await client.templates.get(template.template_id)  # the token, fetched before the sends
    sandbox.set_faults({"slow_reply": 1.0, "slow_reply_delay": 0.3}, fault_after_accept_share=0)
    pulled = 0

    def inputs() -> Iterator[SendMessage]:
        nonlocal pulled
        for i, msg in enumerate(messages_for(sandbox, template, 100)):
            pulled += 1
            # The first is refused locally: an outcome at once, while the others hang.
            yield attrs.evolve(msg, to="12") if i == 0 else msg

    semaphore = transport_of(client).semaphore
    async for outcome in client.messages.send_many(inputs()):
        assert outcome.index == 0
        assert semaphore._value < 4  # slow sends in flight
        break
    at_break = pulled
    await settle(3)
    assert not fan_out_workers()
    assert semaphore._value == 4  # every slot back
    await asyncio.sleep(0.05)
    assert pulled == at_break
    sandbox.set_faults(None)
    assert (await client.messages.send(messages_for(sandbox, template, 1)[0])).tracking_id


@pytest.mark.parametrize("kind", ["break", "aclose"])
async def test_leaving_early_never_breaks_the_client(
    kind: str, sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    client = make_client(max_concurrency=4)
    iterator = client.messages.send_many(messages_for(sandbox, template, 50), concurrency=4)
    async for _ in iterator:
        break
    if kind == "aclose":
        await iterator.aclose()  # type: ignore[attr-defined]
    del iterator
    await settle(3)
    assert not fan_out_workers()
    outcomes = [o async for o in client.messages.send_many(messages_for(sandbox, template, 5))]
    assert all(o.ok for o in outcomes)


@pytest.mark.parametrize("validate", [True, False])
async def test_send_many_checks_each_input_unless_told_it_was_checked(
    sandbox: Sandbox,
    template: Template,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    validate: bool,
) -> None:
    checked: list[str] = []
    real_issues = SendMessage.issues

    def issues(self: SendMessage, *args: Any, **kwargs: Any) -> Any:
        checked.append(self.to)
        return real_issues(self, *args, **kwargs)

    monkeypatch.setattr(SendMessage, "issues", issues)
    inputs = messages_for(sandbox, template, 5)
    client = make_client()
    outcomes = [
        o async for o in client.messages.send_many(inputs, template=template, validate=validate)
    ]
    assert all(o.ok for o in outcomes)
    assert sorted(checked) == (sorted(m.to for m in inputs) if validate else [])
