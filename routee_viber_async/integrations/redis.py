"""One rate limit and one webhook deduplication shared by every process, on Redis.

Needs the ``redis`` extra (``pip install 'routee-viber-async[redis]'``, redis-py's asyncio
client)::

    from redis.asyncio import Redis
    from routee_viber_async.integrations.redis import RedisDeduplicator, RedisRateLimiter

    redis = Redis.from_url("redis://localhost:6379/0")
    limiter = RedisRateLimiter(redis, "routee:rate:my-account", 200)  # 200 sends/s in all
    client = RouteeViberClient(credentials=..., rate_limiter=limiter)
    router = webhook_router(on_delivery=..., deduplicator=RedisDeduplicator(redis))

:class:`RedisRateLimiter` is GCRA (the generic cell rate algorithm) in one Lua script that reads
Redis's own clock (``TIME``): worker clocks that disagree cannot break the limit, and each
``acquire`` is one atomic script call, or one per wait. Failure behaviour: a Redis that cannot
be reached, or stops answering, makes ``acquire`` (and :meth:`RedisRateLimiter.check`) raise
:class:`~routee_viber_async.RateLimiterUnavailableError` within ``timeout`` seconds; the limit
is never silently dropped, and nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import RouteeError
from .._ratelimit import RateLimiterUnavailableError, sleep_out_pause
from .._validation import check_positive_number, raise_if

try:
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "routee_viber_async.integrations.redis needs redis-py; "
        "install the extra: pip install 'routee-viber-async[redis]'"
    ) from exc

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DeduplicatorUnavailableError", "RedisDeduplicator", "RedisRateLimiter"]

logger = logging.getLogger("routee_viber_async.integrations.redis")

DEFAULT_TIMEOUT = 5.0
DEFAULT_DEDUP_TTL = 86_400  # a day: far longer than Routee keeps retrying a callback

# GCRA on Redis's clock, in microseconds. KEYS[1] holds the theoretical arrival time (TAT) of
# the next send. A send may go now if TAT - now <= tolerance, where tolerance = (burst - 1) *
# interval; a call asks for up to ARGV[3] sends (the waiters of one process) and takes as many
# as may go now (TAT += interval each), answering {count, now}. When none may go, nothing is
# written and the wait until one may is answered, {0, wait}: a waiter that gives up (cancelled)
# has taken nothing. Numbers are written with %.0f: Lua's default formatting of a number keeps
# 14 digits, fewer than a time in microseconds has.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed = math.floor((now + tolerance - tat) / interval) + 1
if allowed < 1 then return {0, math.ceil(tat - tolerance - now)} end
local granted = math.min(allowed, tonumber(ARGV[3]))
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',
           math.ceil((tat - now) / 1000) + 1000)
return {granted, now}
"""

# pause(seconds): no send before now + pause, and no burst right after it either (TAT set so
# that the first send allowed is at now + pause exactly). A later TAT already there stays.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local resume = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
if resume > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', resume), 'PX',
             math.ceil((resume - now) / 1000) + 1000)
end
return 1
"""


def _check_timeout(timeout: object) -> float:
    raise_if(check_positive_number(timeout, "timeout"))
    assert isinstance(timeout, int | float)
    return float(timeout)


def _where(redis: Redis) -> str:
    """Host and port (or socket path) of the client, for error messages: never a password."""
    kwargs = redis.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


class DeduplicatorUnavailableError(RouteeError):
    """The shared deduplicator's Redis cannot be reached (the receiver answers 503)."""


async def _call(
    redis: Redis,
    seconds: float,
    what: str,
    operation: Any,
    error: type[RouteeError] = RateLimiterUnavailableError,
) -> Any:
    """Await ``operation`` within ``seconds``; a Redis failure becomes ``error``."""
    try:
        async with asyncio.timeout(seconds):
            return await operation
    except (RedisError, OSError, TimeoutError) as exc:
        reason = f"no answer within {seconds:g} s" if isinstance(exc, TimeoutError) else exc
        raise error(f"Redis at {_where(redis)} is unavailable for the {what}: {reason}") from exc


class RedisRateLimiter:
    """``rate`` sends per second shared by every process using the same Redis and ``key``.

    ``burst`` sends may go at once after a quiet spell (default ``max(1, rate / 10)``, as the
    local limiter): in any one-second window at most ``rate + burst`` sends are granted.
    ``timeout``: seconds one Redis call may take before ``acquire`` raises
    :class:`~routee_viber_async.RateLimiterUnavailableError`.

    Waiting costs no polling: the script answers how long until the next slot, and the process
    sleeps that long. The waiters of one process queue locally (first come, first served) and
    one task asks Redis for as many slots as there are waiters, then hands out what it got: one
    round trip per process and turn, not one per waiter. A waiter cancelled while it waits has
    taken no slot. (Slots granted in the round trip during which their waiter was cancelled,
    a fraction of a millisecond, go unused: the limit is then only stricter.)

    ``pause(seconds)`` (a 429's ``Retry-After``) stops this process at once and every other
    process as soon as Redis has it (one script call, in the background).
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        rate: float,
        *,
        burst: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        raise_if(check_positive_number(rate, "rate"))
        if burst is None:
            burst = max(1, int(rate / 10))
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise_if(check_positive_number(0, "burst"))  # the same typed error, worded for it
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty string")
        self._redis = redis
        self.key = key
        self.rate = rate
        self.burst = burst
        self._timeout = _check_timeout(timeout)
        self._interval = 1_000_000 / rate  # microseconds between sends
        self._tolerance = (burst - 1) * self._interval
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)
        self._waiters: deque[asyncio.Future[int]] = deque()  # this process's, in order
        self._server: asyncio.Task[None] | None = None  # the task that asks Redis for them
        self._paused_until = 0.0  # monotonic: this process's own view of the last pause
        self._pausing: set[asyncio.Task[None]] = set()

    async def check(self) -> None:
        """Raise :class:`~routee_viber_async.RateLimiterUnavailableError` unless Redis answers.

        For start-up: ``acquire`` would raise the same on first use.
        """
        await _call(self._redis, self._timeout, "rate limit", self._redis.ping())

    async def acquire(self) -> None:
        """Wait for the next shared slot and take it."""
        await self.acquire_at()

    async def acquire_at(self) -> int:
        """Like :meth:`acquire`; returns the grant time on Redis's clock, in microseconds."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiters.append(waiter)
        if self._server is None or self._server.done():
            self._server = loop.create_task(self._serve())
        return await waiter  # cancelled: the server skips it, and it never gets a slot

    def _live_waiters(self) -> int:
        waiters = self._waiters
        while waiters and waiters[0].done():  # cancelled while they waited
            waiters.popleft()
        return sum(1 for w in waiters if not w.done())

    async def _serve(self) -> None:
        """Ask Redis for slots while anybody waits; hand them out in order."""
        while (wanted := self._live_waiters()) > 0:
            await sleep_out_pause(lambda: self._paused_until)
            try:
                granted, value = await _call(
                    self._redis,
                    self._timeout,
                    "rate limit",
                    self._acquire(keys=[self.key], args=[self._interval, self._tolerance, wanted]),
                )
            except RateLimiterUnavailableError as exc:
                # Everybody waiting fails now, not after one timeout each; the next acquire
                # asks Redis again.
                self._fail_waiters(str(exc))
                return
            except BaseException as exc:  # a bug, or the loop's shutdown: nobody waits forever
                self._fail_waiters(f"the rate limiter stopped: {exc!r}")
                raise
            if not granted:
                await asyncio.sleep(int(value) / 1_000_000)
                continue
            for _ in range(int(granted)):
                while self._waiters and self._waiters[0].done():
                    self._waiters.popleft()
                if not self._waiters:
                    break  # their waiters were cancelled in the round trip: unused
                self._waiters.popleft().set_result(int(value))

    def _fail_waiters(self, message: str) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(RateLimiterUnavailableError(message))

    def pause(self, seconds: float) -> None:
        """No send for ``seconds``: here at once, in every process once Redis has it."""
        if not seconds > 0:
            return
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing to tell Redis with
            return
        task = loop.create_task(self._share_pause(seconds))
        self._pausing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._pausing.discard)

    async def _share_pause(self, seconds: float) -> None:
        try:
            await _call(
                self._redis,
                self._timeout,
                "rate limit's pause",
                self._pause(keys=[self.key], args=[seconds * 1_000_000, self._tolerance]),
            )
        except RateLimiterUnavailableError as exc:
            logger.warning("%s (this process still pauses)", exc)

    def __repr__(self) -> str:
        return f"<RedisRateLimiter {self.key!r} {self.rate}/s burst {self.burst}>"


class RedisDeduplicator:
    """The webhooks' deduplicator, shared by every web worker: pass it as ``deduplicator=``.

    A callback's key is claimed with ``SET key 1 NX EX ttl`` (atomic: of two workers receiving
    the same callback, one handles it); a handler that fails releases the key (``DEL``), so that
    Routee's retry gets through. Keys are ``prefix`` + the callback's key (its kind, tracking
    or template id and status): no secret. Redis unreachable: the receiver answers 503 and
    Routee retries later.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl: int = DEFAULT_DEDUP_TTL,
        prefix: str = "routee:webhook:seen:",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
            raise ValueError("ttl must be a positive number of seconds")
        self._redis = redis
        self.ttl = ttl
        self.prefix = prefix
        self._timeout = _check_timeout(timeout)

    def _name(self, key: tuple[str, ...]) -> str:
        return self.prefix + ":".join(key)

    async def _run(self, operation: Any) -> Any:
        return await _call(
            self._redis, self._timeout, "deduplicator", operation, DeduplicatorUnavailableError
        )

    async def contains(self, key: tuple[str, ...]) -> bool:
        """True if ``key`` is claimed (remembers nothing)."""
        return bool(await self._run(self._redis.exists(self._name(key))))

    async def seen(self, key: tuple[str, ...]) -> bool:
        """True if ``key`` is already claimed; otherwise claim it for ``ttl`` seconds."""
        claimed = await self._run(self._redis.set(self._name(key), b"1", nx=True, ex=self.ttl))
        return not claimed

    async def forget(self, key: tuple[str, ...]) -> None:
        """Release ``key`` (its handler failed: Routee's retry must be handled)."""
        await self._run(self._redis.delete(self._name(key)))

    def __repr__(self) -> str:
        return f"<RedisDeduplicator prefix={self.prefix!r} ttl={self.ttl}>"
