"""Helpers of the fan-out tests: messages, stub transports that count what they are asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from routee_viber_async import RouteeViberClient, SendMessage, SendResult, Template
from routee_viber_async._transport import Reply
from routee_viber_async.resources import MessagesResource

SENDER = "sender-1"
TEMPLATE_ID = "tpl-1"

# What the ``make_client`` fixture gives: ``make_client(**options)`` makes a client.
MakeClient = Callable[..., RouteeViberClient]


def number(i: int) -> str:
    return f"+3069{i:08d}"


def message(i: int = 0, **changes: Any) -> SendMessage:
    fields: dict[str, Any] = {
        "sender_info_tracking_id": SENDER,
        "to": number(i),
        "template_id": TEMPLATE_ID,
        "template_lang": "en",
        "template_params": {"pin": f"{i % 1_000_000:06d}"},
    }
    fields.update(changes)
    return SendMessage(**fields)


def index_of(msg: SendMessage) -> int:
    """The ``i`` of ``message(i)``."""
    return int(msg.to[5:])


class Counted:
    """An input that counts how far it was pulled, sync or async.

    ``ahead`` is the largest number of inputs pulled but not yet seen as outcomes by the test
    (which calls :meth:`seen` for each one), measured at every pull.
    """

    def __init__(self, count: int, make: Callable[[int], Any] = message) -> None:
        self.count = count
        self.make = make
        self.pulled = 0
        self.yielded = 0
        self.ahead = 0

    def seen(self) -> None:
        self.yielded += 1

    def _pull(self, i: int) -> Any:
        self.pulled += 1
        self.ahead = max(self.ahead, self.pulled - self.yielded)
        return self.make(i)

    def sync(self) -> Iterator[Any]:
        for i in range(self.count):
            yield self._pull(i)

    async def asynchronous(self) -> AsyncIterator[Any]:
        for i in range(self.count):
            if i % 3 == 0:
                await asyncio.sleep(0)  # a source that really suspends now and then
            yield self._pull(i)


class StubTransport:
    """Stands in for ``Transport`` under a real ``MessagesResource``.

    ``MessagesResource._send`` still validates and serialises each message; this records every body
    (decoded), counts sends in flight and cancelled ones, and answers like Routee after
    ``await behave(body)`` (which may sleep, wait for a gate or raise).
    """

    def __init__(
        self,
        max_concurrency: int = 100,
        behave: Callable[[Mapping[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.hooks = None  # the real transport's: no hooks
        self.behave = behave
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = 0
        self.finished = 0
        self.cancelled = 0
        self.start_times: list[float] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        idempotent: bool | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Reply:
        assert (method, path, idempotent) == ("POST", "/viber/transactional/messages", False)
        assert body is not None
        decoded = json.loads(body)
        self.bodies.append(decoded)
        self.started += 1
        self.start_times.append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.behave is not None:
                await self.behave(decoded)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        self.finished += 1
        answer = {"trackingId": f"track-{decoded['seq']}", "seq": decoded["seq"]}
        return Reply({**answer, "to": decoded["to"], "status": {"status": "QUEUED"}}, 1)


def resource(transport: StubTransport) -> MessagesResource:
    return MessagesResource(transport)  # type: ignore[arg-type]


RESULT = SendResult("track-fast")


class FastMessages(MessagesResource):
    """``_send`` answers at once and does nothing else: only the fan-out's cost is left."""

    def __init__(self, max_concurrency: int = 100) -> None:
        class _Transport:
            pass

        transport = _Transport()
        transport.max_concurrency = max_concurrency  # type: ignore[attr-defined]
        transport.hooks = None  # type: ignore[attr-defined]
        super().__init__(transport)  # type: ignore[arg-type]
        self.sends = 0

    async def _send(
        self,
        message: SendMessage,
        template: Template | None,
        seq: int | None,
        *,
        validate: bool = True,
    ) -> tuple[SendResult, int]:
        self.sends += 1
        return RESULT, 1


def leftover_tasks() -> set[asyncio.Task[Any]]:
    """Every task of the loop but the running test's."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


def fan_out_workers() -> set[asyncio.Task[Any]]:
    """The fan-out's worker tasks still alive (other tasks, e.g. a server's, may exist)."""
    return {
        t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "_Pump.work"
    }


async def settle(rounds: int = 2) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until_still(value: Callable[[], object], turns: int = 20) -> None:
    """Yield to the loop until ``value()`` stays the same for ``turns`` turns in a row: what
    changes it is waiting on something else than the loop (a full buffer, a gate). Counted in
    turns, not seconds, so that a loaded machine cannot cut it short."""
    async with asyncio.timeout(60):
        still, seen = 0, value()
        while still < turns:
            await asyncio.sleep(0)
            now = value()
            still, seen = (still + 1, seen) if now == seen else (0, now)
