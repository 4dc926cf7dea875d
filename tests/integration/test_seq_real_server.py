"""``seq``: every attempt of a send carries the same one, and no two sends share one.

Against real servers on loopback: a small aiohttp app that records every request body (so both
attempts of a retried send are seen), and the sandbox with injected faults.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from integration_helpers import PIN, TO, MakeClient, MakeSandbox, otp_message
from internals import send_counted

from routee_viber_async import (
    LegacyOtp,
    RetryPolicy,
    RouteeViberClient,
    ServerError,
    StaticToken,
)
from routee_viber_async._seq import next_seq
from routee_viber_async.pytest_plugin import approved_template

MAX_SEQ = 2**53


class RecordingRoutee:
    """Answers ``statuses`` in turn (then 200), echoing each request's ``seq``; keeps bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.app = web.Application()
        self.app.router.add_post("/viber/transactional/messages", self._answer)
        self.app.router.add_post("/viber/otp", self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.bodies.append(body)
        await asyncio.sleep(0)
        if self.statuses:
            status = self.statuses.pop(0)
            return web.json_response({"code": f"{status}000000"}, status=status)
        return web.json_response(
            {"trackingId": f"t-{len(self.bodies)}", "seq": body["seq"], "to": body["to"]}
        )


@pytest.fixture
async def recording() -> AsyncIterator[tuple[RecordingRoutee, RouteeViberClient]]:
    routee = RecordingRoutee()
    server = TestServer(routee.app, host="127.0.0.1")
    await server.start_server()
    client = RouteeViberClient(
        credentials=StaticToken("static-token"),
        base_url=str(server.make_url("")),
        retry=RetryPolicy.no_wait(max_attempts=4, retry_ambiguous_sends=True),  # at-least-once
    )
    try:
        yield routee, client
    finally:
        await client.close()
        await server.close()


async def test_every_attempt_of_a_send_carries_the_same_seq(
    recording: tuple[RecordingRoutee, RouteeViberClient],
) -> None:
    routee, client = recording
    routee.statuses = [503, 500, 502]
    result, attempts = await send_counted(client, otp_message("sender", "template"))
    assert attempts == 4
    seqs = [body["seq"] for body in routee.bodies]
    assert len(seqs) == 4
    assert len(set(seqs)) == 1
    assert result.seq == seqs[0]
    assert 0 < seqs[0] < MAX_SEQ
    assert all(body == routee.bodies[0] for body in routee.bodies)


async def test_every_attempt_of_a_legacy_otp_carries_the_same_seq(
    recording: tuple[RecordingRoutee, RouteeViberClient],
) -> None:
    routee, client = recording
    routee.statuses = [503]
    await client.messages.send_otp(LegacyOtp("sender", TO, template_params={"pin": PIN}))
    assert len(routee.bodies) == 2
    assert routee.bodies[0]["seq"] == routee.bodies[1]["seq"]


async def test_concurrent_sends_never_share_a_seq(
    recording: tuple[RecordingRoutee, RouteeViberClient],
) -> None:
    routee, client = recording
    routee.statuses = [503] * 20  # some of them retried as well
    results = await asyncio.gather(
        *(client.messages.send(otp_message("sender", "template")) for _ in range(300))
    )
    sent = {body["seq"] for body in routee.bodies}
    assert len(routee.bodies) == 320
    assert len(sent) == 300
    assert {r.seq for r in results} == sent


def test_next_seq_is_unique_increasing_and_exact_in_a_double() -> None:
    seqs = [next_seq() for _ in range(10_000)]
    assert all(type(s) is int for s in seqs)
    assert all(a < b for a, b in itertools.pairwise(seqs))
    assert seqs[0] > 0
    assert seqs[-1] < MAX_SEQ
    assert all(float(s) == s for s in seqs)  # survives a JSON number round trip


def test_next_seq_is_unique_across_threads() -> None:
    found: list[list[int]] = [[] for _ in range(4)]

    def draw(into: list[int]) -> None:
        into.extend(next_seq() for _ in range(2_500))

    threads = [threading.Thread(target=draw, args=(into,)) for into in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(itertools.chain.from_iterable(found))) == 10_000


# -- the same, against the sandbox --------------------------------------------------------------


async def test_a_send_retried_after_503_is_stored_once_with_its_seq(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox()
    client = make_client(sandbox)
    template_id = (await approved_template(client, sandbox)).template_id
    sandbox.inject_fault("service_unavailable", times=1)
    result, attempts = await send_counted(client, otp_message(sandbox.sender_id, template_id))
    assert attempts == 2
    assert sandbox.fault_counts["service_unavailable"] == 1
    [stored] = sandbox.messages
    assert stored.seq == result.seq
    assert sandbox.duplicate_seq_count == 0


async def test_an_ambiguous_retry_reaches_the_sandbox_with_the_same_seq(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox()
    client = make_client(sandbox, retry=RetryPolicy.no_wait(retry_ambiguous_sends=True))
    template_id = (await approved_template(client, sandbox)).template_id
    # At-least-once (opted in): the first attempt is accepted, then answered 500, and the retry
    # is a second, identical send.
    sandbox.inject_fault("server_error", times=1, after_accept=True)
    result, attempts = await send_counted(client, otp_message(sandbox.sender_id, template_id))
    assert attempts == 2
    assert [m.seq for m in sandbox.messages] == [result.seq, result.seq]
    assert sandbox.duplicate_seq_count == 1  # how Routee (and you) can tell the duplicate


async def test_without_ambiguous_retries_the_send_is_not_repeated(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox()
    client = make_client(sandbox, retry=RetryPolicy.no_wait(retry_ambiguous_sends=False))
    template_id = (await approved_template(client, sandbox)).template_id
    sandbox.inject_fault("server_error", times=1, after_accept=True)
    with pytest.raises(ServerError) as caught:
        await client.messages.send(otp_message(sandbox.sender_id, template_id))
    assert caught.value.attempts == 1
    assert len(sandbox.messages) == 1
    assert sandbox.duplicate_seq_count == 0
