"""``send_many``'s bounds: ``concurrency`` sends in flight at most, ``rate_limit`` per second."""

from __future__ import annotations

import ast
import asyncio
import bisect
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fanout_helpers import Counted, StubTransport, message, resource

from routee_viber_async import RouteeViberClient, StaticToken, ValidationError
from routee_viber_async.resources import _fanout

CLOSED = "http://127.0.0.1:9"  # nothing listens: these tests never reach the network


async def busy(body: Mapping[str, Any]) -> None:
    for _ in range(random.randrange(1, 6)):
        await asyncio.sleep(0)


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_never_more_than_concurrency_sends_in_flight(concurrency: int) -> None:
    transport = StubTransport(max_concurrency=100, behave=busy)
    outcomes = [
        o async for o in resource(transport).send_many(Counted(400).sync(), concurrency=concurrency)
    ]
    assert len(outcomes) == 400
    assert transport.max_in_flight == concurrency  # reached, never passed


async def test_the_default_concurrency_is_the_clients_max_concurrency() -> None:
    transport = StubTransport(max_concurrency=5, behave=busy)
    outcomes = [o async for o in resource(transport).send_many(Counted(200).asynchronous())]
    assert len(outcomes) == 200
    assert transport.max_in_flight == 5


@pytest.mark.parametrize("concurrency", [0, -1, 2.5, True, "4"])
def test_a_bad_concurrency_is_refused_at_the_call(concurrency: Any) -> None:
    source = Counted(3)
    with pytest.raises(ValidationError, match="concurrency must be a positive integer"):
        resource(StubTransport()).send_many(source.sync(), concurrency=concurrency)
    assert source.pulled == 0


@pytest.mark.parametrize("rate", [0, -5, float("nan"), float("inf"), True, "10"])
def test_a_bad_rate_limit_is_refused_at_the_call(rate: Any) -> None:
    with pytest.raises(ValidationError, match="rate_limit must be a positive number"):
        resource(StubTransport()).send_many([message()], rate_limit=rate)


def most_in_window(times: list[float], width: float) -> int:
    """The largest number of ``times`` (sorted) inside any window ``[t, t + width)``."""
    return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))


async def test_rate_limit_spaces_the_sends_with_at_most_a_tenth_of_a_second_burst() -> None:
    transport = StubTransport()
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcomes = [
        o
        async for o in resource(transport).send_many(
            Counted(100).sync(), concurrency=50, rate_limit=200
        )
    ]
    elapsed = loop.time() - began
    assert len(outcomes) == 100
    assert all(o.ok for o in outcomes)
    # A burst of rate / 10 = 20 sends, then one every 5 ms: 80 more take 0.4 s.
    assert 0.38 <= elapsed < 1.5
    times = sorted(transport.start_times)
    burst = 20
    for width in (0.05, 0.1, 0.25):
        assert most_in_window(times, width) <= burst + 200 * width + 1
    assert most_in_window(times, 0.01) <= burst + 3  # the burst itself, nothing more


async def test_a_low_rate_sends_one_at_a_time() -> None:
    transport = StubTransport()
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcomes = [o async for o in resource(transport).send_many(Counted(3).sync(), rate_limit=8)]
    assert len(outcomes) == 3
    assert all(o.ok for o in outcomes)
    # Burst 1, then one every 125 ms: send k starts no earlier than k * 125 ms. Measured from the
    # start, not between sends, since a loaded machine may run two granted sends back to back.
    times = transport.start_times
    assert times[1] - began >= 0.12
    assert times[2] - began >= 0.24


async def test_a_rate_below_one_per_second_still_sends() -> None:
    outcomes = [o async for o in resource(StubTransport()).send_many([message()], rate_limit=0.5)]
    assert len(outcomes) == 1
    assert outcomes[0].ok


# -- a concurrency above the client's max_concurrency (issue 18, Library) --------------------


async def test_a_concurrency_above_max_concurrency_runs_at_the_cap_and_warns_once() -> None:
    transport = StubTransport(max_concurrency=5, behave=busy)
    messages = resource(transport)
    source = Counted(200)
    with pytest.warns(UserWarning, match=r"concurrency=1000\) runs at most 5 ") as caught:
        iterator = messages.send_many(source.sync(), concurrency=1000)
    assert len(caught) == 1
    warning = caught[0]
    assert warning.filename == __file__  # it points at the call of send_many
    text = str(warning.message)
    assert "max_concurrency=5" in text
    assert "RouteeViberClient(max_concurrency=1000)" in text
    outcomes = []
    async for outcome in iterator:
        outcomes.append(outcome)
        source.seen()
    assert len(outcomes) == 200
    assert all(o.ok for o in outcomes)
    assert transport.max_in_flight == 5
    assert source.ahead <= 2 * 5  # as many workers as the cap: memory follows it too

    # Once per client: the next call, however high, says nothing more.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = [o async for o in messages.send_many(Counted(20).sync(), concurrency=500)]
    assert len(again) == 20
    assert transport.max_in_flight == 5


@pytest.mark.parametrize("concurrency", [None, 1, 5])
async def test_a_concurrency_within_max_concurrency_says_nothing(concurrency: int | None) -> None:
    transport = StubTransport(max_concurrency=5, behave=busy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcomes = [
            o
            async for o in resource(transport).send_many(
                Counted(50).sync(), concurrency=concurrency
            )
        ]
    assert len(outcomes) == 50
    assert transport.max_in_flight == (concurrency or 5)


async def test_each_client_is_told_of_the_cap_once() -> None:
    async with (
        RouteeViberClient(credentials=StaticToken("t"), base_url=CLOSED, max_concurrency=2) as a,
        RouteeViberClient(credentials=StaticToken("t"), base_url=CLOSED, max_concurrency=3) as b,
    ):
        with pytest.warns(UserWarning, match="max_concurrency=2"):
            await a.messages.send_many([], concurrency=10).aclose()
        with pytest.warns(UserWarning, match="max_concurrency=3"):
            await b.messages.send_many([], concurrency=10).aclose()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await a.messages.send_many([], concurrency=10).aclose()
            await b.messages.send_many([], concurrency=99).aclose()


def test_the_fan_out_imports_nothing_of_the_messages_resource() -> None:
    """No import cycle, not even a type-only one: send_many hands the fan-out what it needs."""
    source = Path(_fanout.__file__).read_text(encoding="utf-8")
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert "_messages" not in imported
    assert "._transport" not in source
