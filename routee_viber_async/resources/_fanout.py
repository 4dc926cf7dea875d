"""``messages.send_many``: a streaming fan-out with bounded memory.

A fixed pool of ``concurrency`` workers pulls messages from the input one at a time (so a
generator of a million messages is never materialised) and pushes one :class:`SendOutcome` per
input into a bounded queue that the caller's ``async for`` drains. Closing the iterator (break,
``aclose()``, cancellation) stops the pulls, cancels the sends in flight and awaits every worker.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from aiolimiter import AsyncLimiter

from .._errors import RouteeError, ValidationError, outcome_unknown
from .._requests import SendMessage
from .._responses import SendResult, Template
from .._seq import next_seq
from .._validation import Code

if TYPE_CHECKING:
    from ._messages import MessagesResource

__all__ = ["SendOutcome", "fan_out"]


@attrs.frozen
class SendOutcome:
    """What became of one input of ``send_many``.

    ``index`` is the input's position; ``request`` the message as sent (with its ``seq``);
    exactly one of ``result`` and ``error`` is set; ``attempts`` counts HTTP attempts (0 when the
    message was refused locally).
    """

    index: int
    request: Any
    result: SendResult | None
    error: Exception | None
    attempts: int

    @property
    def ok(self) -> bool:
        """True when Routee accepted the message."""
        return self.error is None

    @property
    def outcome_unknown(self) -> bool:
        """True when the send failed but may still have reached Routee (do not blindly resend)."""
        return outcome_unknown(self.error)


_END: Any = object()


def _rate_limiter(rate: float | None) -> AsyncLimiter | None:
    if rate is None:
        return None
    if rate <= 0:
        raise ValidationError([(Code.INVALID_FIELD, "rate_limit must be a positive number.")])
    # Tenths of a second: smooth at high rates, and at most a tenth of a second's burst.
    period = 0.1 if rate >= 10 else 1.0
    return AsyncLimiter(rate * period, period)


async def fan_out(
    messages_resource: MessagesResource,
    messages: Iterable[SendMessage] | AsyncIterable[SendMessage],
    *,
    concurrency: int | None,
    rate_limit: float | None,
    template: Template | None,
) -> AsyncIterator[SendOutcome]:
    """The generator behind ``send_many``; see there."""
    workers_wanted = concurrency or messages_resource._transport.max_concurrency
    if isinstance(workers_wanted, bool) or workers_wanted < 1:
        raise ValidationError([(Code.INVALID_FIELD, "concurrency must be a positive integer.")])
    limiter = _rate_limiter(rate_limit)
    pull = _puller(messages)
    indexes = itertools.count()
    outcomes: asyncio.Queue[SendOutcome | object] = asyncio.Queue(maxsize=workers_wanted)
    source_error: list[BaseException] = []
    live = workers_wanted

    async def send_one(index: int, message: Any) -> SendOutcome:
        if not isinstance(message, SendMessage):
            error = ValidationError([(Code.INVALID_FIELD, f"input {index} is not a SendMessage")])
            return SendOutcome(index, message, None, error, 0)
        if message.seq is None:
            message = attrs.evolve(message, seq=next_seq())
        try:
            result, attempts = await messages_resource.send_counted(message, template=template)
        except Exception as exc:  # captured in the outcome, never raised
            attempts = exc.attempts if isinstance(exc, RouteeError) else 0
            return SendOutcome(index, message, None, exc, attempts)
        return SendOutcome(index, message, result, None, attempts)

    async def worker() -> None:
        nonlocal live
        try:
            while True:
                try:
                    message = await pull()
                except Exception as exc:  # the input itself failed: stop pulling, keep outcomes
                    source_error.append(exc)
                    message = _END
                if message is _END:
                    break
                index = next(indexes)
                if limiter is not None:
                    await limiter.acquire()
                await outcomes.put(await send_one(index, message))
        finally:
            live -= 1
        if live == 0:
            await outcomes.put(_END)

    tasks = [asyncio.create_task(worker()) for _ in range(workers_wanted)]
    try:
        while True:
            item = await outcomes.get()
            if item is _END:
                break
            assert isinstance(item, SendOutcome)
            yield item
        if source_error:
            raise source_error[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _puller(messages: Iterable[Any] | AsyncIterable[Any]) -> Any:
    """An ``await pull()`` that returns the next input or ``_END``; safe for many workers."""
    if isinstance(messages, AsyncIterable):
        iterator = aiter(messages)
        lock = asyncio.Lock()  # an async generator must not be advanced by two tasks at once
        exhausted = False

        async def pull_async() -> Any:
            nonlocal exhausted
            async with lock:
                if exhausted:
                    return _END
                try:
                    return await anext(iterator)
                except StopAsyncIteration:
                    exhausted = True
                    return _END

        return pull_async

    sync_iterator: Iterator[Any] = iter(messages)

    async def pull_sync() -> Any:
        # No await between the check and next(): atomic with respect to the other workers.
        return next(sync_iterator, _END)

    return pull_sync
