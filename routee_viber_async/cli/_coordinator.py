"""``routee-viber send-many ... --redis URL``: the coordinator of a distributed fan-out.

The same run as the local one (the preflight, the fingerprint, the results file and its
reconciliation, the summary, the exit codes and the resume rules are ``SendMany``'s), but the
rows are sent by ``routee-viber worker`` processes:

1. the input is checked locally, as always; the run id is a digest of the fingerprint (input
   SHA-256, sender, template, language) unless ``--run-id`` names it;
2. the run's Redis journal (see ``_redis_journal``) is read into the local journal, which is
   here the coordinator's copy of it (the results file is made from that copy, with the local
   run's reconciliation: one line per input with an outcome, whatever crashed);
3. the rows to send are sealed (``ROUTEE_FANOUT_KEY``) in chunks of ``--chunk-size`` rows, a
   few chunks ahead of the outcomes (memory and the queue stay bounded by the chunk size);
4. outcomes stream back from Redis into the local journal, the results file and the progress.

Ctrl-C stops enqueuing and tells the workers to skip the run's chunks still queued; the sends
in flight drain (exit 130). A second Ctrl-C leaves at once. A rerun resumes: rows never sent
are sent, rows whose outcome is unknown are held back unless ``--resend-unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import attrs

from .._responses import Template
from ._fanout_key import FanoutCipher, load_cipher
from ._input import InputChanged, InputRow, InputSnapshot
from ._journal import FAILED, OUTCOME_STATES, SENT, UNKNOWN, Journal, RowRecord
from ._progress import make_progress
from ._redis_journal import DEFAULT_RETENTION, RedisRun
from ._results import ResultsFile, reconcile
from ._send_many import SendMany, UsageError, _StopSignal
from ._worker import CHUNK_TASK, NUDGE_TASK, account_id, make_broker, redis_options, seal_chunk

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from taskiq import AsyncBroker

    from .._client import RouteeViberClient

__all__ = ["Coordinator", "DistributedSendMany", "run_id_of"]

_T = TypeVar("_T")

#: Chunks queued ahead of the outcomes: enough to keep many workers busy, few enough that
#: the queue (and Redis's memory) stays small.
_CHUNKS_AHEAD = 16
_READ_BATCH = 512
#: How often the coordinator looks for rows held by dead workers, renews the TTLs, trims the
#: stream and nudges the workers to redeliver, while it waits for outcomes.
_HOUSEKEEPING = 1.0
#: A Redis that does not answer for this long stops the run (it resumes after).
REDIS_PATIENCE = 60.0


class RedisLost(Exception):
    """Redis could not be reached for too long: the run stops (a rerun resumes it)."""


def run_id_of(fingerprint: dict[str, str]) -> str:
    """The run id a fingerprint gives (its SHA-256, shortened)."""
    canonical = json.dumps(fingerprint, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


@attrs.frozen
class DistributedSendMany(SendMany):
    """``send-many --redis URL``: the local run's options, and where the workers are."""

    redis: str = ""
    run_id: str | None = None
    retention: int = DEFAULT_RETENTION
    chunk_size: int = 1000

    def _check_options(self) -> None:
        if self.chunk_size < 1:
            raise UsageError("--chunk-size must be at least 1")
        if self.retention < 1:
            raise UsageError("--retention must be at least 1 second")
        load_cipher()  # a missing key says how to make one, before anything else

    async def _send_checked(
        self,
        client: RouteeViberClient,
        template: Template,
        snapshot: InputSnapshot,
        total: int,
        stop: _StopSignal,
        err: IO[str],
    ) -> int:
        return await Coordinator(self, stop, err).run(template, snapshot, total)


class Coordinator:
    """One ``send-many --redis`` run, after its preflight."""

    def __init__(self, job: DistributedSendMany, stop: _StopSignal, err: IO[str]) -> None:
        self.job = job
        self.stop = stop
        self.err = err
        self.cipher: FanoutCipher = load_cipher()

    async def run(self, template: Template, snapshot: InputSnapshot, total: int) -> int:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        job = self.job
        fingerprint = job.fingerprint(snapshot.sha256)
        run_id = job.run_id or run_id_of(fingerprint)
        # Unreachable at the start: said at once (later, a restarting Redis is waited for).
        async with Redis.from_url(job.redis) as probe:
            try:
                await probe.ping()
            except (RedisError, OSError) as exc:
                where = _safe_url(job.redis)
                raise UsageError(f"--redis {where}: cannot reach it ({exc})") from None
        redis = Redis.from_url(job.redis, **redis_options())
        try:
            run = RedisRun(redis, run_id, job.retention)
            await self._check_run(run, fingerprint)
            journal = job._open_journal(snapshot.sha256, redis_run=run_id)
            try:
                return await _RunState(self, run, journal, snapshot, total, redis).run()
            except RedisLost as exc:
                print(f"routee-viber send-many: {exc}", file=self.err)
                return 1
            finally:
                journal.close()
        finally:
            await redis.aclose()

    async def _check_run(self, run: RedisRun, fingerprint: dict[str, str]) -> None:
        meta = await run.read_meta()
        differing = sorted(k for k in fingerprint if k in meta and meta[k] != fingerprint[k])
        if differing:
            raise UsageError(
                f"run {run.run_id} in Redis was started for another input or other settings "
                f"(differs in: {', '.join(differing)}); give another --run-id for a new run"
            )
        if meta.get("key_id") and meta["key_id"] != self.cipher.key_id:
            raise UsageError(
                f"run {run.run_id} was started with another ROUTEE_FANOUT_KEY: its workers "
                "could not open new chunks; use that run's key (or give another --run-id)"
            )


class _RunState:
    """The moving parts of one coordinator run."""

    def __init__(
        self,
        coordinator: Coordinator,
        run: RedisRun,
        journal: Journal,
        snapshot: InputSnapshot,
        total: int,
        redis: Redis,
    ) -> None:
        self.c = coordinator
        self.job = coordinator.job
        self.stop = coordinator.stop
        self.err = coordinator.err
        self.run_ = run
        self.journal = journal
        self.snapshot = snapshot
        self.total = total
        self.redis = redis
        self.remaining = 0  # rows to send whose outcome has not come back yet
        self.queued = 0  # rows enqueued whose outcome has not come back yet
        self.enqueued_all = False
        self.changed = asyncio.Event()
        self.failure: list[str] = []
        self.epoch = 0

    def stop_for(self, reason: str) -> None:
        if not self.failure:
            self.failure.append(reason)
        self.stop.requested = True
        self.changed.set()

    async def run(self) -> int:
        from ._failures import FailureStreak
        from ._send_many import (
            EXIT_FAILED,
            EXIT_INTERRUPTED,
            EXIT_OK,
            EXIT_USAGE,
            UsageError,
            _Outcomes,
            _print_summary,
            _stopped_by_refusals,
        )

        job, run, journal = self.job, self.run_, self.journal
        after = await self._patiently(run.last_outcome_id)
        await self._patiently(self._copy_journal)
        self.epoch = await self._patiently(lambda: run.start(self._meta()))
        counts = job._resume(journal, self.err)
        todo = (
            self.total
            - sum(counts.values())
            + sum(counts.get(state, 0) for state in job._resent_states)
        )
        if todo == 0:
            return job._nothing_to_send(journal, self.total, self.err)
        self.remaining = todo
        try:
            output = ResultsFile(job.output)
        except OSError as exc:
            raise UsageError(f"--output {job.output}: cannot write it ({exc.strerror})") from None
        finished = _Outcomes(job, journal, output, self.stop_for)
        streak = FailureStreak(job.max_failures)

        def leave() -> None:
            finished.flush()
            reconcile(job.output, journal)

        self.stop.on_leave = leave
        broker = make_broker(job.redis)
        await broker.startup()
        try:
            with make_progress(todo, "send-many", self.err) as progress:
                enqueuer = asyncio.create_task(self._enqueue(broker))
                try:
                    await self._collect(broker, after, finished, progress, streak)
                except RedisLost as exc:
                    self.failure.append(str(exc))
                finally:
                    enqueuer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await enqueuer
                finished.flush()
        finally:
            self.stop.on_leave = None
            finished.close()
            output.close()
            with contextlib.suppress(Exception):
                await broker.shutdown()
        try:
            reconcile(job.output, journal)
        except sqlite3.Error as exc:
            self.failure.append(job._journal_failure(journal, exc))
        except OSError as exc:
            self.failure.append(f"--output {job.output}: cannot write it ({exc.strerror})")
        if self.failure:
            print(f"routee-viber send-many: {self.failure[0]}", file=self.err)
        counts = journal.counts()
        if streak.tripped and not self.failure:
            print(
                f"routee-viber send-many: {_stopped_by_refusals(streak, counts.get(FAILED, 0))}",
                file=self.err,
            )
        _print_summary(counts, self.total, self.err)
        if self.failure:
            return EXIT_FAILED
        if streak.tripped:
            return EXIT_USAGE
        if self.stop.requested:
            return EXIT_INTERRUPTED
        if counts.get(FAILED, 0) or counts.get(UNKNOWN, 0):
            return EXIT_FAILED
        return EXIT_OK

    def _meta(self) -> dict[str, str]:
        job = self.job
        return {
            **job.fingerprint(self.snapshot.sha256),
            "total": str(self.total),
            "key_id": self.c.cipher.key_id,
            "account": account_id(),
            "retention": str(job.retention),
            "rate": "" if job.rate is None else repr(job.rate),
        }

    async def _copy_journal(self) -> None:
        """The Redis journal's outcomes into the local copy, a page at a time (rows pending in
        Redis are a live worker's, or a dead one's: their outcome comes through the stream)."""
        page: list[RowRecord] = []
        async for record in self.run_.scan():
            if record.state in OUTCOME_STATES:
                page.append(record)
            if len(page) >= 1000:
                self.journal.upsert_rows(page)
                page.clear()
        self.journal.upsert_rows(page)

    async def _enqueue(self, broker: AsyncBroker) -> None:
        """The rows to send, sealed in chunks, a few chunks ahead of the outcomes."""
        job = self.job
        task = broker.find_task(CHUNK_TASK)
        assert task is not None
        chunk: list[tuple[Any, ...]] = []
        number = 0
        try:
            for batch in job._batches(self._rows(), self.journal, self.stop):
                for row, previous in batch:
                    state, seq = previous if previous is not None else (None, None)
                    chunk.append((row.index, row.to, row.params, state, seq))
                    if len(chunk) >= job.chunk_size:
                        await self._send_chunk(task, number, chunk)
                        number, chunk = number + 1, []
                if self.stop.requested:
                    return
            if chunk and not self.stop.requested:
                await self._send_chunk(task, number, chunk)
        except InputChanged as exc:
            self.stop_for(str(exc))
        except RedisLost as exc:
            self.stop_for(str(exc))
        finally:
            self.enqueued_all = True
            self.changed.set()

    def _rows(self) -> Iterator[InputRow]:
        return self.snapshot.rows()

    async def _send_chunk(self, task: Any, number: int, rows: list[tuple[Any, ...]]) -> None:
        while self.queued >= _CHUNKS_AHEAD * self.job.chunk_size and not self.stop.requested:
            self.changed.clear()
            await self.changed.wait()
        if self.stop.requested:
            return
        sealed = seal_chunk(self.c.cipher, rows)
        await self._patiently(lambda: task.kiq(self.run_.run_id, number, self.epoch, sealed))
        self.queued += len(rows)

    async def _collect(
        self, broker: AsyncBroker, after: str, finished: Any, progress: Any, streak: Any
    ) -> None:
        """Outcomes from the stream until every row to send has one (or, stopped, until no
        row is held by a worker any more)."""
        run = self.run_
        loop = asyncio.get_running_loop()
        next_chores = loop.time() + _HOUSEKEEPING
        told_stop = False
        quiet_since = loop.time()
        while True:
            if self.stop.requested and not told_stop:
                told_stop = True
                self.changed.set()  # the enqueuer may wait for room: it stops instead
                await self._patiently(lambda: run.stop(self.epoch))
            if self.remaining <= 0:
                return
            if told_stop and self.enqueued_all:
                held = await self._patiently(run.holders)
                if not held:
                    # Every row a worker held has its outcome on the stream: read to its end.
                    while True:
                        found = await self._patiently(
                            functools.partial(run.read_outcomes, after, _READ_BATCH, 0)
                        )
                        if not found:
                            return
                        after = self._take(found, finished, progress, streak)
            found = await self._patiently(
                functools.partial(run.read_outcomes, after, _READ_BATCH, int(_HOUSEKEEPING * 500))
            )
            if found:
                after = self._take(found, finished, progress, streak)
                quiet_since = loop.time()
            now = loop.time()
            if now >= next_chores:
                next_chores = now + _HOUSEKEEPING
                await self._patiently(functools.partial(self._chores, after))
                if self.enqueued_all and now - quiet_since >= 2 * _HOUSEKEEPING:
                    nudge = broker.find_task(NUDGE_TASK)
                    assert nudge is not None
                    await self._patiently(nudge.kiq)

    def _take(self, found: list[tuple[str, RowRecord, str | None]], finished: Any,
              progress: Any, streak: Any) -> str:  # fmt: skip
        """Record the outcomes read (those the local copy does not have yet); the last id."""
        known = self.journal.states_of(record.index for _, record, _ in found)
        resent = self.job._resent_states
        fresh: list[tuple[RowRecord, str | None]] = []
        for _, record, refusal in found:
            previous = known.get(record.index)
            if previous == (record.state, record.seq):
                continue  # already copied (the start read the journal while it moved)
            if previous is None or previous[1] != record.seq or previous[0] in resent:
                self.remaining -= 1
                self.queued = max(0, self.queued - 1)
            known[record.index] = (record.state, record.seq)
            fresh.append((record, refusal))
        if fresh:
            # The copy gets the rows (a row new to it has nothing the batch could update),
            # then the batch writes their lines and marks them written.
            self.journal.upsert_rows(record for record, _ in fresh)
            for record, refusal in fresh:
                finished.add_record(record)
                progress.advance(record.state == SENT, unknown=record.state == UNKNOWN)
                if streak.observe_refusal(refusal, _reason_of(record)):
                    self.stop.requested = True
            self.changed.set()
        return found[-1][0]

    async def _chores(self, after: str) -> None:
        run = self.run_
        held = await run.holders()
        by_worker: dict[str, list[int]] = {}
        for index, worker in held.items():
            by_worker.setdefault(worker, []).append(index)
        for worker in await run.dead(by_worker):
            await run.abandon(worker, by_worker[worker])
        await run.keep()
        await run.trim(after)

    async def _patiently(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """A Redis call, retried while Redis is away (a restart); :class:`RedisLost` after
        ``REDIS_PATIENCE`` seconds."""
        from redis.exceptions import RedisError
        from taskiq.exceptions import SendTaskError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + REDIS_PATIENCE
        delay = 0.1
        while True:
            try:
                return await call()
            except (RedisError, OSError, SendTaskError) as exc:
                if loop.time() >= deadline:
                    raise RedisLost(
                        f"--redis {_safe_url(self.job.redis)}: lost ({exc}); stopped "
                        "(run the same command again to resume)"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


def _reason_of(record: RowRecord) -> Callable[[], str]:
    return lambda: record.error or "refused"


def _safe_url(url: str) -> str:
    """A Redis URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit(parts._replace(netloc=user + host))
