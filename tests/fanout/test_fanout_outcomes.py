"""``send_many``: one outcome per input, in completion order, with its seq; errors captured."""

from __future__ import annotations

import asyncio
import random
import typing
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import attrs
import pytest
from fanout_helpers import (
    Counted,
    FastMessages,
    StubTransport,
    index_of,
    leftover_tasks,
    message,
    resource,
)

from routee_viber_async import SendMessage, SendOutcome, SendResult, ValidationError
from routee_viber_async.resources import _fanout
from routee_viber_async.resources._fanout import SendManyIterator, _with_seq


async def jitter(body: Mapping[str, Any]) -> None:
    for _ in range(random.randrange(4)):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind", ["list", "generator", "async generator"])
async def test_one_outcome_per_input_with_the_message_as_sent(kind: str) -> None:
    transport = StubTransport(behave=jitter)
    source = Counted(60)
    inputs: Any = {
        "list": [message(i) for i in range(60)],
        "generator": source.sync(),
        "async generator": source.asynchronous(),
    }[kind]

    outcomes = [o async for o in resource(transport).send_many(inputs, concurrency=7)]

    assert len(outcomes) == 60
    assert sorted(o.index for o in outcomes) == list(range(60))
    for o in outcomes:
        assert isinstance(o, SendOutcome)
        assert o.ok
        assert o.error is None
        assert not o.outcome_unknown
        assert o.attempts == 1
        assert index_of(o.request) == o.index  # the index is the input's position
        assert o.request == attrs.evolve(message(o.index), seq=o.request.seq)
        assert isinstance(o.result, SendResult)
        assert o.result.tracking_id == f"track-{o.request.seq}"
    sent = {b["seq"]: b for b in transport.bodies}
    assert sorted(sent) == sorted(o.request.seq for o in outcomes)  # one send each, its seq
    assert all(sent[o.request.seq]["to"] == o.request.to for o in outcomes)
    assert not leftover_tasks()


async def test_outcomes_come_in_completion_order() -> None:
    # Send i is answered only once the outcome of send i + 1 has been seen, so the sends
    # complete last to first whatever the machine's speed.
    may_answer = [asyncio.Event() for _ in range(8)]
    may_answer[7].set()

    async def later_for_earlier(body: Mapping[str, Any]) -> None:
        await may_answer[index_of_to(body["to"])].wait()

    transport = StubTransport(behave=later_for_earlier)
    indexes = []
    sends = resource(transport).send_many([message(i) for i in range(8)], concurrency=8)
    async with asyncio.timeout(30):  # a fan-out in input order would wait here forever
        async for outcome in sends:
            indexes.append(outcome.index)
            if outcome.index:
                may_answer[outcome.index - 1].set()
    assert indexes == list(reversed(range(8)))


def index_of_to(to: str) -> int:
    return int(to[5:])


async def test_seq_is_assigned_once_per_input_and_inputs_are_never_changed() -> None:
    transport = StubTransport()
    shared = message(1)  # the same object three times: each send needs a seq of its own
    given = message(2, seq=123456)
    inputs = [shared, shared, given, shared]

    outcomes = sorted(
        [o async for o in resource(transport).send_many(inputs, concurrency=2)],
        key=lambda o: o.index,
    )

    assert shared.seq is None  # frozen input untouched
    assigned = [outcomes[i].request.seq for i in (0, 1, 3)]
    assert all(isinstance(s, int) for s in assigned)
    assert len(set(assigned)) == 3
    assert outcomes[2].request is given  # a given seq is kept, the message not even copied
    assert [b["seq"] for b in sorted(transport.bodies, key=lambda b: b["seq"])] == sorted(
        [*assigned, 123456]
    )


async def test_the_copy_carrying_the_seq_is_made_only_when_request_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copies: list[int] = []

    def counting_copy(message: SendMessage, seq: int) -> SendMessage:
        copies.append(seq)
        return _with_seq(message, seq)

    monkeypatch.setattr(_fanout, "_with_seq", counting_copy)
    transport = StubTransport()
    inputs = [message(i, template_params={"pin": f"P{i}Q"}) for i in range(5)]

    outcomes = [o async for o in resource(transport).send_many(inputs, concurrency=2)]

    assert copies == []  # sent with its seq, yet nothing copied
    first = outcomes[0]
    request = first.request
    assert request is first.request  # made once, then kept
    assert copies == [request.seq]
    assert request == attrs.evolve(inputs[first.index], seq=request.seq)
    assert request.seq in {b["seq"] for b in transport.bodies}  # the seq that went out
    assert f"seq={request.seq}" in repr(first)
    assert "{'pin': '***'}" in repr(first)
    assert f"P{first.index}Q" not in repr(first)


def test_the_fast_seq_copy_equals_attrs_evolve() -> None:
    full = message(
        3,
        delivery_scope="PRIMARY_DEVICE",
        ttl=3600,
        inbound_url="https://example.com/in",
        callback_url="https://example.com/cb",
        label="OTP",
        multiple_singles_message_id="batch-9",
        session_message=True,
    )
    unset = {f for f in attrs.fields_dict(SendMessage) if getattr(full, f) is None}
    assert unset == {"seq"}  # every other field set, so a field the copy forgot would show
    copy = _with_seq(full, 42)
    assert copy == attrs.evolve(full, seq=42)
    assert copy.template_params is full.template_params

    @attrs.frozen
    class Tagged(SendMessage):  # type: ignore[misc]
        tag: str = "x"

    tagged = Tagged(**{f: getattr(full, f) for f in attrs.fields_dict(SendMessage)}, tag="t")
    assert _with_seq(tagged, 7) == attrs.evolve(tagged, seq=7)


async def test_a_non_message_input_gets_an_error_outcome_and_the_rest_go_on() -> None:
    transport = StubTransport()
    inputs: list[Any] = [message(0), {"to": "+306900000001"}, None, message(3)]

    outcomes = {o.index: o async for o in resource(transport).send_many(inputs, concurrency=3)}

    assert sorted(outcomes) == [0, 1, 2, 3]
    for i in (1, 2):
        bad = outcomes[i]
        assert not bad.ok
        assert bad.result is None
        assert isinstance(bad.error, ValidationError)
        assert f"input {i} is not a SendMessage" in str(bad.error)
        assert bad.attempts == 0
        assert bad.request is inputs[i]
    assert outcomes[0].ok
    assert outcomes[3].ok
    assert transport.started == 2


async def test_local_validation_errors_are_outcomes_with_no_attempt() -> None:
    transport = StubTransport()
    inputs = [message(0, to="not a number"), message(1), message(2, ttl=0)]

    outcomes = {o.index: o async for o in resource(transport).send_many(inputs)}

    for i in (0, 2):
        assert isinstance(outcomes[i].error, ValidationError)
        assert outcomes[i].attempts == 0
        assert outcomes[i].request.seq is not None  # set before the (refused) first attempt
    assert outcomes[1].ok
    assert [b["to"] for b in transport.bodies] == [message(1).to]


@pytest.mark.parametrize("error", [ValueError("boom"), RuntimeError("the transport is closed")])
async def test_any_exception_of_a_send_is_captured(error: Exception) -> None:
    async def fail_odd(body: Mapping[str, Any]) -> None:
        if index_of_to(body["to"]) % 2:
            raise error

    outcomes = {
        o.index: o
        async for o in resource(StubTransport(behave=fail_odd)).send_many(
            [message(i) for i in range(6)], concurrency=2
        )
    }
    assert [i for i, o in sorted(outcomes.items()) if o.error is error] == [1, 3, 5]
    assert all(outcomes[i].attempts == 0 for i in (1, 3, 5))
    assert all(outcomes[i].ok for i in (0, 2, 4))


class Boom(Exception):
    pass


def failing_sync(rows: int) -> Iterator[SendMessage]:
    for i in range(rows):
        yield message(i)
    raise Boom("row 5 is unreadable")


async def failing_async(rows: int) -> AsyncIterator[SendMessage]:
    for i in range(rows):
        await asyncio.sleep(0)
        yield message(i)
    raise Boom("row 5 is unreadable")


@pytest.mark.parametrize("source", [failing_sync, failing_async])
async def test_an_input_that_raises_ends_the_loop_after_the_rows_before_it(source: Any) -> None:
    transport = StubTransport(behave=jitter)
    outcomes = []
    iterator = resource(transport).send_many(source(5), concurrency=3)

    async def consume() -> None:
        async for outcome in iterator:
            outcomes.append(outcome)

    with pytest.raises(Boom, match="row 5 is unreadable"):
        await consume()

    assert sorted(o.index for o in outcomes) == [0, 1, 2, 3, 4]
    assert all(o.ok for o in outcomes)
    assert transport.started == 5
    assert not leftover_tasks()
    with pytest.raises(StopAsyncIteration):  # raised once, then over
        await anext(iterator)


async def test_nothing_happens_before_the_first_pull() -> None:
    fast = FastMessages()
    source = Counted(10)
    iterator = fast.send_many(source.sync())
    assert isinstance(iterator, SendManyIterator)
    await asyncio.sleep(0.01)
    assert source.pulled == 0
    assert fast.sends == 0
    assert not leftover_tasks()
    await iterator.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)
    assert source.pulled == 0


async def test_empty_input_ends_at_once() -> None:
    fast = FastMessages()
    assert [o async for o in fast.send_many([])] == []
    assert [o async for o in fast.send_many(Counted(0).asynchronous())] == []
    assert not leftover_tasks()


async def test_a_second_concurrent_consumer_is_refused() -> None:
    gate = asyncio.Event()

    async def wait_gate(body: Mapping[str, Any]) -> None:
        await gate.wait()

    iterator = resource(StubTransport(behave=wait_gate)).send_many([message(0)])
    first = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="another task"):
        await anext(iterator)
    gate.set()
    assert (await first).ok
    await iterator.aclose()


def test_outcome_request_is_typed_as_a_send_message() -> None:
    """``outcome.request.seq`` type-checks as ``int | None`` for callers, not as ``Any``."""
    hints = typing.get_type_hints(SendOutcome.request.fget)  # type: ignore[attr-defined]
    assert hints["return"] is SendMessage
    field = attrs.fields_dict(SendOutcome)["_sent"]
    assert typing.get_type_hints(SendOutcome)[field.name] is SendMessage
