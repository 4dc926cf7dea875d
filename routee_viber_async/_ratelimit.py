"""Rate limits: the :class:`RateLimiter` protocol and the process-local default.

``send_many(rate_limit=...)`` and ``RouteeViberClient(rate_limiter=...)`` take a number (sends
per second, in this process only, on aiolimiter) or any :class:`RateLimiter`, such as
``routee_viber_async.integrations.redis.RedisRateLimiter`` (one limit shared by every process
that uses the same Redis and key).

A 429 with ``Retry-After`` pauses the client's limiter and the running fan-out's (the one whose
worker made the call, found through a context variable the fan-out's workers set), so that
every user of the limiter waits, not only the call that was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from ._errors import RateLimitError, RouteeError
from ._validation import check_positive_number, raise_if

__all__ = [
    "LocalRateLimiter",
    "acquire_observed",
    "RateLimiter",
    "RateLimiterUnavailableError",
    "as_rate_limiter",
    "fanout_limiter",
    "pause_on_429",
    "sleep_out_pause",
]


@runtime_checkable
class RateLimiter(Protocol):
    """What paces sends: ``await acquire()`` before each one; ``pause(seconds)`` on a 429."""

    async def acquire(self) -> None:
        """Wait until one more send is allowed (and take that slot)."""

    def pause(self, seconds: float) -> None:
        """Let no send through for ``seconds`` (a 429's ``Retry-After``), for every user."""


class RateLimiterUnavailableError(RouteeError):
    """A shared rate limiter cannot be reached (its Redis is down or unreachable).

    Raised by ``acquire`` after a bounded wait; nothing was sent for that call. The limit is
    never silently dropped: sends wait for the limiter or fail with this error.
    """

    nothing_sent = True


class LocalRateLimiter:
    """A process-local limit of ``rate`` sends per second on aiolimiter's leaky bucket.

    The bucket lets through a burst of ``max(1, rate / 10)`` sends: a tenth of a second's worth
    at high rates (smooth, yet cheap), one send at low ones (the bucket must hold at least one
    send, or aiolimiter refuses every acquire).
    """

    __slots__ = ("_limiter", "_paused_until", "rate")

    def __init__(self, rate: float) -> None:
        raise_if(check_positive_number(rate, "rate_limit"))
        self.rate = rate
        burst = max(1.0, rate / 10)
        self._limiter = AsyncLimiter(burst, burst / rate)
        self._paused_until = 0.0

    async def acquire(self) -> None:
        """Wait out a pause, then for the bucket."""
        await sleep_out_pause(lambda: self._paused_until)
        await self._limiter.acquire()

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` from now (a longer pause already set stays)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def __repr__(self) -> str:
        return f"<LocalRateLimiter {self.rate}/s>"


async def sleep_out_pause(paused_until: Callable[[], float]) -> None:
    """Sleep until the monotonic time ``paused_until()``, which a new pause may push back."""
    wait = paused_until() - time.monotonic()
    while wait > 0:
        await asyncio.sleep(wait)
        wait = paused_until() - time.monotonic()


async def acquire_observed(limiter: RateLimiter, waited: Callable[[float], None]) -> None:
    """``await limiter.acquire()``, then tell ``waited`` how many seconds that took (the
    hooks' ``rate_limit_waited``, which feeds ``routee_rate_limit_wait_seconds``)."""
    started = time.perf_counter()
    await limiter.acquire()
    waited(time.perf_counter() - started)


def as_rate_limiter(value: object, field: str) -> RateLimiter | None:
    """``value`` as a limiter: None, a :class:`RateLimiter`, or a number of sends per second."""
    if value is None or isinstance(value, RateLimiter):
        return value
    raise_if(check_positive_number(value, field))
    assert isinstance(value, int | float)
    return LocalRateLimiter(value)


#: The limiter of the fan-out whose worker is running (each worker task sets it for itself).
fanout_limiter: ContextVar[RateLimiter | None] = ContextVar("routee_fanout_limiter", default=None)


def pause_on_429(
    error: BaseException, client_limiter: RateLimiter | None, *, cap: float, scale: float
) -> None:
    """On a 429 with ``Retry-After``, pause the client's limiter and the current fan-out's.

    The server's delay is capped and scaled as the retry policy does:
    ``min(retry_after, max_retry_after) * sleep_scale``.
    """
    if not isinstance(error, RateLimitError) or error.retry_after is None:
        return
    seconds = min(error.retry_after, cap) * scale
    if seconds <= 0:
        return
    fanout = fanout_limiter.get()
    if client_limiter is not None:
        client_limiter.pause(seconds)
    if fanout is not None and fanout is not client_limiter:
        fanout.pause(seconds)
