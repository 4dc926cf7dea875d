"""Outgoing webhooks: delivery and moderation callbacks POSTed to the user's receivers.

One shared ``aiohttp.ClientSession`` and a fixed pool of worker tasks bound the concurrency. A
POST that fails (connection error, timeout or non-2xx answer) is queued again after the retry
delay through the scheduler (no worker sleeps), up to ``attempts`` attempts in all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
import attrs

from .. import _json
from ._scheduler import Scheduler

__all__ = ["CallbackDispatcher", "CallbackRecord"]

logger = logging.getLogger("routee_viber_async.sandbox")

CallbackKind = Literal["delivery", "moderation"]


@attrs.frozen
class CallbackRecord:
    """One callback the sandbox finished with: delivered (``ok``) or given up on."""

    kind: CallbackKind
    url: str
    payload: dict[str, Any]
    attempts: int
    ok: bool
    status: int | None
    """The receiver's last HTTP status, None after a connection error or timeout."""


@attrs.define
class _Job:
    kind: CallbackKind
    url: str
    payload: dict[str, Any]
    body: bytes
    subject: str | None = None
    """The tracking id or template id the callback is about."""
    attempt: int = 1


class CallbackDispatcher:
    """Queues callbacks and POSTs them with bounded concurrency and retries."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        attempts: int,
        retry_delay: float,
        timeout: float,
        concurrency: int,
        log_size: int,
    ) -> None:
        self._scheduler = scheduler
        self.on_finished: Callable[[str, CallbackRecord, float], None] | None = None
        """Told of each finished callback with a subject: (subject, record, seconds the last
        attempt took)."""
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._timeout = timeout
        self._concurrency = concurrency
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._busy = 0
        self._waiting_retry = 0
        self.sent = 0
        """Callbacks the receiver accepted (2xx)."""
        self.failed = 0
        """Callbacks given up on after every attempt."""
        self.attempts_made = 0
        """POST attempts in all, retries included."""
        self.log: deque[CallbackRecord] = deque(maxlen=log_size)

    @property
    def pending(self) -> int:
        """Callbacks queued, in flight or waiting for a retry."""
        return self._queue.qsize() + self._busy + self._waiting_retry

    async def start(self) -> None:
        """Open the session and start the workers."""
        connector = aiohttp.TCPConnector(limit=self._concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"routee-sandbox-callbacks-{i}")
            for i in range(self._concurrency)
        ]

    def post(
        self, kind: CallbackKind, url: str, payload: dict[str, Any], subject: str | None = None
    ) -> None:
        """Queue one callback about ``subject`` (a no-op before start or after close)."""
        if self._session is None:
            return
        self._queue.put_nowait(_Job(kind, url, payload, _json.dumps(payload), subject))

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._attempt(job)
            finally:
                self._busy -= 1

    async def _attempt(self, job: _Job) -> None:
        assert self._session is not None
        self.attempts_made += 1
        status: int | None = None
        started = asyncio.get_running_loop().time()
        try:
            async with self._session.post(
                job.url, data=job.body, headers={"Content-Type": "application/json"}
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.debug("sandbox: %s callback to %s failed: %r", job.kind, job.url, exc)
        took = asyncio.get_running_loop().time() - started
        ok = status is not None and 200 <= status < 300
        if not ok and job.attempt < self._attempts:
            job.attempt += 1
            self._waiting_retry += 1
            self._scheduler.call_later(self._retry_delay, self._retry, job)
            return
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        record = CallbackRecord(job.kind, job.url, job.payload, job.attempt, ok, status)
        self.log.append(record)
        if self.on_finished is not None and job.subject is not None:
            self.on_finished(job.subject, record, took)

    def _retry(self, job: _Job) -> None:
        self._waiting_retry -= 1
        self._queue.put_nowait(job)

    async def close(self) -> None:
        """Stop the workers (queued callbacks are dropped) and close the session."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
