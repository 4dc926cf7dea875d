"""``messages.send_many``: a streaming fan-out with bounded memory.

A pool of at most ``concurrency`` worker tasks pulls messages from the input one at a time (so a
generator of a million messages is never materialised), sends each through the client (its
semaphore, token and retries) and appends one :class:`SendOutcome` per input to a short buffer
that the caller's ``async for`` drains. Backpressure: a worker pulls the next input only while
at most ``concurrency`` outcomes wait in the buffer, so at most ``2 * concurrency`` inputs are
held at any time (in flight plus buffered), whatever the input's length.

The iterator is not an async generator, so that leaving the loop needs no help from the garbage
collector or the event loop's asyncgen hooks:

- ``break`` out of ``async for outcome in client.messages.send_many(...)`` drops the last
  reference to the iterator; its ``__del__`` stops the pulls and cancels the sends in flight at
  once (CPython frees it on the spot). When the iterator is also held elsewhere (a variable),
  it could still be resumed, so it is only stopped by ``aclose()``, by leaving an
  ``async with client.messages.send_many(...) as outcomes:`` block, or once it is freed; in the
  meantime the workers pause as soon as the buffer is full.
- ``aclose()`` and cancelling the consuming task while it awaits the next outcome stop the pulls,
  cancel the sends in flight and wait until every worker has ended.

Per message the workers do little beyond the send itself: no task and no queue machinery per
message; they allocate the outcome, and a future only when the consumer (or a worker facing a
full buffer) has to wait. A message without ``seq`` is sent with the one assigned to it; its copy
carrying that ``seq`` is made only if the caller reads ``outcome.request``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import RouteeError, ValidationError, outcome_unknown
from .._ratelimit import RateLimiter, acquire_observed, fanout_limiter
from .._requests import SendMessage
from .._responses import SendResult, Template
from .._seq import next_seq
from .._validation import Code

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ["Send", "SendManyIterator", "SendOutcome", "positive_concurrency"]


@attrs.define(eq=False, repr=False)
class SendOutcome:
    """What became of one input of ``send_many``.

    ``index`` is the input's position; ``request`` the message as sent (with its ``seq``);
    exactly one of ``result`` and ``error`` is set; ``attempts`` counts HTTP attempts (0 when the
    message was refused locally). Outcomes compare by identity.
    """

    # A record handed over to the caller, who owns it: not frozen.

    index: int
    # The input, and the seq send_many gave it (None: the input is the message as sent). The
    # copy carrying the seq is made on first access to ``request``: most callers never read it.
    _sent: SendMessage = attrs.field(alias="request")
    result: SendResult | None
    error: Exception | None
    attempts: int
    _seq: int | None = attrs.field(default=None, kw_only=True, alias="_seq")

    @property
    def request(self) -> SendMessage:
        """The message as sent, with its ``seq``.

        (An input that was not a :class:`SendMessage`, which only an untyped caller can pass,
        is refused with a ``ValidationError`` and kept here as it was given.)
        """
        seq = self._seq
        if seq is None:
            return self._sent
        request = self._sent = _with_seq(self._sent, seq)
        self._seq = None
        return request

    @property
    def ok(self) -> bool:
        """True when Routee accepted the message."""
        return self.error is None

    @property
    def outcome_unknown(self) -> bool:
        """True when the send failed but may still have reached Routee (do not blindly resend)."""
        return outcome_unknown(self.error)

    def __repr__(self) -> str:
        return (
            f"SendOutcome(index={self.index!r}, request={self.request!r}, "
            f"result={self.result!r}, error={self.error!r}, attempts={self.attempts!r})"
        )


#: How the fan-out sends one message: ``send(message, template, seq)`` gives the result and
#: the number of HTTP attempts (``MessagesResource._send``).
Send = Callable[[SendMessage, Template | None, int | None], Awaitable[tuple[SendResult, int]]]

_END: Any = object()
_WORKERS: set[asyncio.Task[None]] = set()  # every fan-out's workers, until they end


def _with_seq(message: SendMessage, seq: int) -> SendMessage:
    """A copy of ``message`` carrying ``seq``."""
    return attrs.evolve(message, seq=seq)


# -- options ----------------------------------------------------------------------------------


def positive_concurrency(value: object) -> int:
    """``send_many``'s ``concurrency``, checked."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError([(Code.INVALID_FIELD, "concurrency must be a positive integer.")])
    return value


# -- the iterator -----------------------------------------------------------------------------


class SendManyIterator:
    """The async iterator of :class:`SendOutcome` that ``messages.send_many`` returns.

    Nothing is sent before the first ``__anext__``. Also an async context manager whose exit
    calls :meth:`aclose`.
    """

    __slots__ = ("_pump",)

    def __init__(
        self,
        send: Send,
        messages: Iterable[Any] | AsyncIterable[Any],
        concurrency: int,
        limiter: RateLimiter | None,
        template: Template | None,
        *,
        rate_waited: Callable[[float], None] | None = None,
    ) -> None:
        self._pump = _Pump(send, messages, concurrency, limiter, template, rate_waited)

    def __aiter__(self) -> SendManyIterator:
        return self

    async def __anext__(self) -> SendOutcome:
        pump = self._pump
        ready = pump.ready
        while not ready:
            if pump.state is not _RUNNING:
                if pump.state is _NEW:
                    pump.start()
                    continue
                raise StopAsyncIteration
            if pump.live == 0:  # every worker has ended and every outcome was yielded
                pump.state = _DONE
                error, pump.error = pump.error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            if pump.consumer is not None:
                raise RuntimeError("send_many(): another task is already awaiting an outcome")
            while pump.paused:  # (not needed by the accounting; a cheap guarantee of progress)
                pump.resume_one()
            waiter = pump.consumer = pump.running_loop().create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                # Like an async generator, a cancelled __anext__ ends the iteration.
                pump.consumer = None
                await pump.stop()
                raise
        outcome: SendOutcome = ready.popleft()
        if pump.paused and len(ready) < pump.room:
            pump.resume_one()
        return outcome

    async def aclose(self) -> None:
        """Stop: pull no more input, cancel the sends in flight and wait for every worker.

        Outcomes not yet yielded are dropped. Idempotent.
        """
        await self._pump.stop()

    async def __aenter__(self) -> SendManyIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._pump.stop()

    def __del__(self) -> None:
        # The consumer let go (typically a ``break``): stop now rather than leave the workers
        # sending until the garbage collector or the loop's shutdown gets to them.
        pump = getattr(self, "_pump", None)
        if pump is not None and pump.state is _RUNNING and pump.live:
            pump.cancel_soon()

    def __repr__(self) -> str:
        pump = self._pump
        return (
            f"<SendManyIterator {pump.state}: {pump.index} pulled, {pump.live} workers, "
            f"{len(pump.ready)} outcomes waiting>"
        )


_NEW = "not started"
_RUNNING = "running"
_DONE = "done"
_CLOSED = "closed"


class _Pump:
    """The state and the workers of one ``send_many``; holds no reference to its iterator, so
    that dropping the iterator frees it at once and its ``__del__`` can stop the workers."""

    __slots__ = (
        "concurrency",
        "consumer",
        "error",
        "index",
        "limiter",
        "live",
        "loop",
        "messages",
        "paused",
        "rate_waited",
        "ready",
        "room",
        "send",
        "state",
        "stopping",
        "tasks",
        "template",
    )

    def __init__(
        self,
        send: Send,
        messages: Iterable[Any] | AsyncIterable[Any],
        concurrency: int,
        limiter: RateLimiter | None,
        template: Template | None,
        rate_waited: Callable[[float], None] | None,
    ) -> None:
        self.send = send
        self.rate_waited = rate_waited  # the hooks' rate_limit_waited, if any
        self.messages: Iterable[Any] | AsyncIterable[Any] | None = messages
        self.concurrency = concurrency
        # Workers pull only while fewer outcomes than this wait to be yielded; so at most
        # room + concurrency - 1 = 2 * concurrency inputs are held at any time.
        self.room = concurrency + 1
        self.limiter = limiter
        self.template = template
        self.state = _NEW
        self.index = 0  # the next input's position
        self.ready: deque[SendOutcome] = deque()  # outcomes not yet yielded
        self.paused: deque[asyncio.Future[None]] = deque()  # workers waiting for room
        self.consumer: asyncio.Future[None] | None = None  # the consumer waiting for an outcome
        self.tasks: list[asyncio.Task[None]] = []
        self.live = 0  # workers not yet ended
        self.stopping = False  # no more pulls: the input ended or failed, or we were closed
        self.error: BaseException | None = None  # raised after the last outcome
        self.loop: asyncio.AbstractEventLoop | None = None

    def running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        assert loop is not None, "started"
        return loop

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.state = _RUNNING
        messages = self.messages
        assert messages is not None
        self.messages = None
        if isinstance(messages, AsyncIterable):
            worker = self.work(None, partial(self.pull_async, aiter(messages), asyncio.Lock()))
        else:
            worker = self.work(iter(messages), None)
        self.spawn(worker)

    def spawn(self, worker: Coroutine[Any, Any, None]) -> None:
        self.live += 1
        task = self.running_loop().create_task(worker)
        self.tasks.append(task)
        # The loop keeps only weak references to tasks: hold the workers here until they end,
        # so that they are never collected pending along with a dropped iterator.
        _WORKERS.add(task)
        task.add_done_callback(_WORKERS.discard)

    async def work(
        self, iterator: Iterator[Any] | None, pull: Callable[[], Awaitable[Any]] | None
    ) -> None:
        """One worker: pull an input, send it, append its outcome; until the input ends."""
        ready = self.ready
        room = self.room
        send = self.send
        template = self.template
        limiter = self.limiter
        fanout_limiter.set(limiter)  # this task's own context: a 429 pauses our limiter too
        try:
            while not self.stopping:
                if len(ready) >= room:
                    await self.pause()
                    continue
                try:
                    if iterator is not None:
                        message = next(iterator, _END)
                    else:
                        assert pull is not None
                        message = await pull()
                except Exception as exc:  # the input itself failed: no more pulls
                    self.fail(exc)
                    break
                if message is _END:
                    self.stopping = True
                    break
                # No await since the pull (releasing the lock does not suspend): the indexes
                # follow the order of the pulls.
                index = self.index
                self.index = index + 1
                if self.live < self.concurrency:  # a worker per input, up to concurrency
                    self.spawn(self.work(iterator, pull))
                if limiter is not None:
                    try:
                        if self.rate_waited is None:
                            await limiter.acquire()
                        else:
                            await acquire_observed(limiter, self.rate_waited)
                    except RouteeError as exc:  # a shared limiter is down: nothing was sent
                        ready.append(SendOutcome(index, message, None, exc, 0))
                        self.fail(exc)  # its input has its outcome; pull no more
                        self.wake_consumer()
                        break
                if isinstance(message, SendMessage):
                    # Set once, before the first attempt: every retry carries the same seq.
                    seq = next_seq() if message.seq is None else None
                    try:
                        result, attempts = await send(message, template, seq)
                    except Exception as exc:  # captured in the outcome, never raised
                        attempts = exc.attempts if isinstance(exc, RouteeError) else 0
                        outcome = SendOutcome(index, message, None, exc, attempts, _seq=seq)
                    else:
                        outcome = SendOutcome(index, message, result, None, attempts, _seq=seq)
                else:
                    problem = f"input {index} is not a SendMessage but {type(message).__name__}"
                    outcome = SendOutcome(
                        index, message, None, ValidationError([(Code.INVALID_FIELD, problem)]), 0
                    )
                ready.append(outcome)
                consumer = self.consumer
                if consumer is not None:
                    self.consumer = None
                    if not consumer.done():
                        consumer.set_result(None)
        except Exception as exc:  # a bug of ours: end the iteration with it rather than hang
            self.fail(exc)
        finally:
            self.live -= 1
            if self.live == 0:
                self.wake_consumer()

    async def pull_async(self, async_iterator: AsyncIterator[Any], lock: asyncio.Lock) -> Any:
        """The next input or ``_END``; an async generator must not be advanced by two tasks at
        once."""
        async with lock:
            if self.stopping:  # the input ended while we waited for the lock
                return _END
            return await anext(async_iterator, _END)

    async def pause(self) -> None:
        """Wait until the consumer took an outcome from a full buffer."""
        waiter = self.running_loop().create_future()
        self.paused.append(waiter)
        await waiter

    def resume_one(self) -> None:
        paused = self.paused
        while paused:
            waiter = paused.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_consumer(self) -> None:
        consumer = self.consumer
        if consumer is not None:
            self.consumer = None
            if not consumer.done():
                consumer.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stopping = True

    def cancel_soon(self) -> None:
        """Stop pulling and cancel every worker; callable from ``__del__``, never raises."""
        self.stopping = True
        self.state = _CLOSED
        self.ready.clear()
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            for task in self.tasks:
                task.cancel()
        else:  # freed in another thread: cancelling is the loop's business
            try:
                for task in self.tasks:
                    loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed in between
                pass

    async def stop(self) -> None:
        """Stop pulling, cancel every worker and wait until they have all ended."""
        if self.state is _NEW:
            self.state = _CLOSED
            self.messages = None
            return
        self.stopping = True
        self.state = _CLOSED
        self.ready.clear()
        self.error = None
        tasks = [task for task in self.tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
