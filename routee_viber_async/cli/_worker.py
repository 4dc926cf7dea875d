"""``routee-viber worker``: a process that sends the distributed ``send-many``'s chunks.

It runs under taskiq's own worker machinery (``taskiq.cli.worker.run.start_listen`` with a
:class:`~taskiq_redis.RedisStreamBroker`), one process, with one client made by
:func:`~routee_viber_async.integrations.taskiq.setup_routee` and, per run, the run's
cluster-wide :class:`~routee_viber_async.integrations.redis.RedisRateLimiter`.

A chunk (one task: a run id, its epoch and the sealed rows) is opened with
``ROUTEE_FANOUT_KEY`` and sent through ``send_many``. Its rows are claimed in the Redis journal
a few at a time, just before they are handed to the fan-out, so that at most ``--concurrency``
rows of this worker are ever ``pending`` there: a worker killed mid-run leaves at most that
many unknown. The chunk is acknowledged when every row was handled; a chunk not finished (the
worker stopping, Redis lost) is put back on the queue or, if the worker dies, redelivered by
taskiq after ``--redeliver-after`` seconds, and its rows already claimed or final are skipped.

A worker holding another key, or other credentials than the coordinator's, refuses the chunk
(it goes back on the queue for the others), says why, and stops.

SIGTERM or SIGINT: no new claims; the sends in flight drain, their outcomes are recorded, the
unfinished chunks go back on the queue, and the process exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from redis.exceptions import RedisError
from taskiq import AsyncBroker, Context, TaskiqDepends

from .. import _json
from .._config import RetryPolicy
from .._ratelimit import RateLimiterUnavailableError
from .._requests import SendMessage
from ..integrations.taskiq import RouteeClient
from ..resources import SendOutcome
from ._exit import CommandError
from ._fanout_key import FanoutCipher, FanoutKeyError, load_cipher
from ._journal import UNKNOWN, RowRecord
from ._outcome import row_record
from ._redis_journal import CHUNK_QUEUE, Claim, RedisRun, worker_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .._client import RouteeViberClient
    from ..integrations.redis import RedisRateLimiter

__all__ = [
    "CHUNK_TASK",
    "NUDGE_TASK",
    "account_id",
    "chunk_rows",
    "make_broker",
    "run_worker",
    "seal_chunk",
]

logger = logging.getLogger("routee_viber_async.cli.worker")

CHUNK_TASK = "routee_viber.send_chunk"
#: An empty task the coordinator sends while it waits: a worker's broker looks for chunks to
#: redeliver (those of a dead worker) only after it has read something from the queue.
NUDGE_TASK = "routee_viber.nudge"
_GROUP = "routee-viber-workers"
#: Liveness: renewed every second, gone this many milliseconds after the worker stops.
LIVENESS_MS = 5_000
#: Outcomes are recorded this many at a time, or after this many seconds.
_OUTCOME_BATCH = 256
_OUTCOME_DELAY = 0.02
#: After a drain, the seconds taskiq gets to end its own shutdown before the process leaves.
_EXIT_GRACE = 5.0
#: A Redis that does not answer is retried this long before the worker gives up.
_REDIS_PATIENCE = 60.0


def make_broker(url: str, *, redeliver_after: float = 60.0) -> AsyncBroker:
    """The broker of the chunk queue (the coordinator kicks on it, workers listen to it)."""
    from taskiq_redis import RedisStreamBroker

    broker = RedisStreamBroker(
        url,
        queue_name=CHUNK_QUEUE,
        consumer_group_name=_GROUP,
        consumer_id="0",  # a group made after chunks were queued still gets them
        # One chunk at a time per read, so that chunks spread over the workers.
        xread_count=1,
        xread_block=1000,
        # A chunk left unacknowledged (its worker killed) goes to another after this long;
        # the lock must expire too, or a worker killed while holding it blocks that forever.
        idle_timeout=int(redeliver_after * 1000),
        unacknowledged_lock_timeout=max(redeliver_after, 1.0),
        maxlen=100_000,  # acknowledged chunks are trimmed
        **redis_options(),
    )
    broker.register_task(_send_chunk, task_name=CHUNK_TASK)
    broker.register_task(_nudge, task_name=NUDGE_TASK)
    return broker


def redis_options() -> dict[str, Any]:
    """redis-py options of every connection of the fan-out: a Redis that restarts (a few
    seconds) is waited for, retried with backoff, rather than ending the worker's listener."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return {
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=20),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, OSError],
    }


def seal_chunk(cipher: FanoutCipher, rows: Sequence[tuple[Any, ...]]) -> str:
    """A chunk's rows ``(index, to, params, previous state, previous seq)``, sealed."""
    return cipher.seal(_json.dumps([list(row) for row in rows]))


def chunk_rows(cipher: FanoutCipher, sealed: str) -> list[tuple[int, str, dict[str, str], Any]]:
    """A sealed chunk's rows ``(index, to, params, previous)``, previous ``(state, seq)``."""
    rows = []
    for index, to, params, state, seq in _json.loads(cipher.open(sealed)):
        rows.append((int(index), str(to), params, None if state is None else (state, int(seq))))
    return rows


def account_id(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Names the Routee account and endpoint the credentials of the environment send to,
    without them: a worker with other credentials than the coordinator's refuses its chunks.
    (With an access token only, the endpoint alone: a token is a secret.)"""
    from .._client import DEFAULT_BASE_URL

    env = os.environ if environ is None else environ
    base = env.get("ROUTEE_BASE_URL") or DEFAULT_BASE_URL
    who = env.get("ROUTEE_APPLICATION_ID", "") if env.get("ROUTEE_APPLICATION_SECRET") else ""
    return hashlib.sha256(f"routee-viber account\0{base}\0{who}".encode()).hexdigest()[:16]


async def _nudge(context: Annotated[Context, TaskiqDepends()]) -> None:
    """Nothing but its acknowledgement: see :data:`NUDGE_TASK`."""
    await context.ack()


class _Worker:
    """What one worker process shares between its chunks."""

    def __init__(self, redis: Redis, cipher: FanoutCipher | None, concurrency: int) -> None:
        self.redis = redis
        self.cipher = cipher
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.account = account_id()
        self.concurrency = concurrency
        self.free = concurrency  # rows this worker may still hold pending in Redis
        self.changed = asyncio.Condition()
        self.draining = False
        self.running = 0  # chunks being sent
        self.refused: str | None = None
        self._limiters: dict[str, RedisRateLimiter] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.redis.set(worker_key(self.id), "1", px=LIVENESS_MS)
        self._heartbeat = asyncio.create_task(self._beat())

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):
            await self.redis.delete(worker_key(self.id))
        await self.redis.aclose()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(LIVENESS_MS / 5000)
            try:
                await self.redis.set(worker_key(self.id), "1", px=LIVENESS_MS)
            except Exception as exc:  # Redis away for a moment: the next beat tries again
                logger.warning("worker %s: cannot renew its liveness key (%s)", self.id, exc)

    def limiter(self, run: RedisRun, rate: float | None) -> RedisRateLimiter | None:
        """The run's cluster-wide limiter (one per run in this process)."""
        if rate is None:
            return None
        from ..integrations.redis import RedisRateLimiter

        limiter = self._limiters.get(run.run_id)
        if limiter is None:
            limiter = self._limiters[run.run_id] = RedisRateLimiter(self.redis, run.rate_key, rate)
        return limiter

    def refusal(self, meta: dict[str, str]) -> str | None:
        """Why this worker cannot serve a run, if it cannot."""
        if self.cipher is None or meta.get("key_id") != self.cipher.key_id:
            return (
                "this worker's ROUTEE_FANOUT_KEY is not the key of the run's chunks (make one "
                "with `routee-viber keygen`; the coordinator and every worker need the same)"
            )
        if meta.get("account") != self.account:
            return (
                "this worker's Routee credentials (ROUTEE_APPLICATION_ID, ROUTEE_BASE_URL) "
                "are not the coordinator's: it would send from another account"
            )
        return None

    async def take(self, wanted: int) -> int:
        """Wait until some of this worker's ``--concurrency`` is free; take up to ``wanted``
        (at least a quarter of it, so that claims go a batch at a time)."""
        least = max(1, min(wanted, self.concurrency // 4))
        async with self.changed:
            await self.changed.wait_for(lambda: self.free >= least or self.draining)
            if self.draining:
                return 0
            taken = min(wanted, self.free)
            self.free -= taken
            return taken

    async def give(self, count: int) -> None:
        if count:
            async with self.changed:
                self.free += count
                self.changed.notify_all()

    async def drain(self) -> None:
        """Stop claiming (a signal); returns once the sends in flight are done and recorded."""
        self.draining = True
        async with self.changed:
            self.changed.notify_all()
            await self.changed.wait_for(lambda: self.running == 0)

    async def chunk_started(self) -> None:
        async with self.changed:
            self.running += 1

    async def chunk_ended(self) -> None:
        async with self.changed:
            self.running -= 1
            self.changed.notify_all()


_worker: _Worker | None = None


def _current() -> _Worker:
    assert _worker is not None, "run under `routee-viber worker`"
    return _worker


async def _send_chunk(
    run_id: str,
    chunk: int,
    epoch: int,
    sealed: str,
    client: RouteeClient,
    context: Annotated[Context, TaskiqDepends()],
) -> None:
    """One chunk of a run (the task). Acknowledged when done, put back when not."""
    worker = _current()
    done = False
    await worker.chunk_started()
    try:
        done = await _ChunkRun(worker, client, run_id, chunk, epoch, sealed).run()
    finally:
        try:
            if done:
                await _patiently(context.ack)
            else:
                await _put_back(context)
        finally:
            await worker.chunk_ended()


async def _put_back(context: Context) -> None:
    """Back on the queue for another worker (then acknowledged here: a crash in between
    leaves two copies, and the second skips every row the first handled)."""
    from taskiq.exceptions import NoResultError

    async def requeue() -> None:
        with contextlib.suppress(NoResultError):
            await context.requeue()

    await _patiently(requeue)
    await _patiently(context.ack)


class _ChunkRun:
    def __init__(
        self,
        worker: _Worker,
        client: RouteeViberClient,
        run_id: str,
        chunk: int,
        epoch: int,
        sealed: str,
    ) -> None:
        self.worker = worker
        self.client = client
        self.journal = RedisRun(worker.redis, run_id)
        self.chunk = chunk
        self.epoch = epoch
        self.sealed = sealed
        self.stopped = False  # the coordinator stopped this epoch: the rest is skipped
        self.unfinished = False  # rows left unclaimed (draining): the chunk goes back

    async def run(self) -> bool:
        """Whether the chunk is done with (acknowledge it)."""
        worker = self.worker
        if worker.draining:
            return False
        meta = await self.journal.read_meta()
        if not meta:
            logger.warning("chunk %s of run %s: the run is gone (expired?): dropped",
                           self.chunk, self.journal.run_id)  # fmt: skip
            return True
        if int(meta.get("stopped", "-1")) >= self.epoch:
            return True
        self.journal.retention = int(meta.get("retention", self.journal.retention))
        refusal = worker.refusal(meta)
        rows: list[tuple[int, str, dict[str, str], Any]] = []
        if refusal is None:
            assert worker.cipher is not None
            try:
                rows = chunk_rows(worker.cipher, self.sealed)
            except FanoutKeyError as exc:
                refusal = str(exc)
        if refusal is not None:
            self._refuse(refusal)
            return False
        rate = float(meta["rate"]) if meta.get("rate") else None
        try:
            await self._send(self.client, meta, rows, worker.limiter(self.journal, rate))
        except (RedisError, OSError, RateLimiterUnavailableError) as exc:
            # Redis went away mid-chunk: what was sent is recorded, what was claimed and not
            # sent is released; the chunk goes back for its other rows.
            logger.warning(
                "routee-viber worker: chunk %s of run %s stopped, Redis unavailable (%s): it "
                "goes back to the queue",
                self.chunk,
                self.journal.run_id,
                exc,
            )
            return False
        return self.stopped or not self.unfinished

    def _refuse(self, why: str) -> None:
        worker = self.worker
        if worker.refused is None:
            worker.refused = why
            logger.error(
                "routee-viber worker: refusing the chunks of run %s: %s; stopping this worker "
                "(its chunks go back to the queue for the others)",
                self.journal.run_id,
                why,
            )
            os.kill(os.getpid(), signal.SIGTERM)  # taskiq's own shutdown: nothing else taken

    async def _send(
        self,
        client: RouteeViberClient,
        meta: dict[str, str],
        rows: list[tuple[int, str, dict[str, str], Any]],
        limiter: RedisRateLimiter | None,
    ) -> None:
        sink = _Sink(self.worker, self.journal)
        # Claimed and not handed to the fan-out yet: (index, to, seq, params).
        waiting: collections.deque[tuple[int, str, int, dict[str, str]]] = collections.deque()
        in_flight: dict[int, tuple[int, str]] = {}  # seq -> (index, to), handed over
        not_sent: list[tuple[int, int]] = []  # (index, seq) claimed and certainly not sent

        async def messages() -> AsyncIterator[SendMessage]:
            position = 0
            while (position < len(rows) or waiting) and not self.worker.draining:
                if not waiting:
                    position = await self._claim_next(rows, position, waiting)
                    continue
                index, to, seq, params = waiting.popleft()
                in_flight[seq] = (index, to)
                yield SendMessage(
                    sender_info_tracking_id=meta["sender"],
                    to=to,
                    template_id=meta["template_id"],
                    template_lang=meta["lang"],
                    template_params=params,
                    seq=seq,
                )
            if position < len(rows) or waiting:  # draining: the chunk goes back for the rest
                self.unfinished = True

        try:
            outcomes = client.messages.send_many(
                messages(), concurrency=self.worker.concurrency, rate_limit=limiter,
                validate=False,  # the coordinator checked every row against the template
            )  # fmt: skip
            async with outcomes:
                async for outcome in outcomes:
                    seq = outcome.request.seq
                    assert seq is not None
                    index, to = in_flight.pop(seq)
                    if isinstance(outcome.error, RateLimiterUnavailableError):
                        not_sent.append((index, seq))  # never left: not a failure of the row
                        continue
                    sink.add(row_record(index, to, outcome), _refusal(outcome))
        finally:
            # However the fan-out ended, every row claimed gets an outcome or is released:
            # none stays pending under a worker that is still alive.
            not_sent += [(index, seq) for index, _, seq, _ in waiting]
            for seq, (index, to) in in_flight.items():  # handed over, no outcome: may be sent
                sink.add(_interrupted(index, to, seq), None)
            await sink.close()
            if not_sent:
                self.unfinished = True
                await _patiently(lambda: self.journal.release(not_sent))
                await self.worker.give(len(not_sent))

    async def _claim_next(
        self,
        rows: list[tuple[int, str, dict[str, str], Any]],
        position: int,
        waiting: collections.deque[tuple[int, str, int, dict[str, str]]],
    ) -> int:
        """Claim the next rows (as many as this worker's free slots); the position after."""
        from .._seq import next_seq

        taken = await self.worker.take(len(rows) - position)
        if taken == 0:  # draining
            return position
        batch = rows[position : position + taken]
        claims: list[Claim] = [(i, to, next_seq(), prev) for i, to, _, prev in batch]
        claimed = await self._claim(claims)
        if claimed is None:  # the coordinator stopped this epoch: the rest is skipped
            self.stopped = True
            await self.worker.give(taken)
            return len(rows)
        await self.worker.give(taken - len(claimed))
        mine = set(claimed)
        waiting.extend(
            (index, to, seq, params)
            for (index, to, seq, _), (_, _, params, _) in zip(claims, batch, strict=True)
            if index in mine
        )
        return position + taken

    async def _claim(self, claims: list[Claim]) -> list[int] | None:
        """Claim in the journal; a Redis error releases what may have been claimed (nothing
        of it was sent) and ends the chunk unfinished."""
        try:
            found = await self.journal.claim(self.worker.id, self.epoch, claims)
        except Exception:
            await _patiently(lambda: self.journal.release([(c[0], c[2]) for c in claims]))
            await self.worker.give(len(claims))
            self.unfinished = True
            raise
        return None if found is None else found


class _Sink:
    """Outcomes recorded a batch at a time (and, with them, this worker's slots given back)."""

    def __init__(self, worker: _Worker, run: RedisRun) -> None:
        self._worker = worker
        self._run = run
        self._batch: list[tuple[RowRecord, str | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, record: RowRecord, refusal: str | None) -> None:
        self._batch.append((record, refusal))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon())
        if len(self._batch) >= _OUTCOME_BATCH or self._worker.free == 0:
            self._wake.set()

    async def _flush_soon(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_OUTCOME_DELAY):
                await self._wake.wait()
        self._wake.clear()
        self._flusher = None
        await self._flush()

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            await _patiently(lambda: self._run.record(batch, self._worker.id))
            await self._worker.give(len(batch))

    async def close(self) -> None:
        if self._flusher is not None:
            self._wake.set()
            await self._flusher
        await self._flush()


async def _patiently(call: Callable[[], Awaitable[None]]) -> None:
    """A write the journal must get: retried while Redis is away (restarting, say); after
    ``_REDIS_PATIENCE`` seconds the worker stops, and its rows become unknown."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _REDIS_PATIENCE
    delay = 0.1
    while True:
        try:
            await call()
            return
        except Exception as exc:
            if loop.time() >= deadline:
                logger.error("routee-viber worker: Redis lost (%s): stopping", exc)
                os.kill(os.getpid(), signal.SIGTERM)
                raise
            logger.warning("routee-viber worker: Redis unavailable (%s): retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _interrupted(index: int, to: str, seq: int) -> RowRecord:
    """A row handed to a send whose outcome never came (the fan-out ended under it)."""
    return RowRecord(
        index, to, seq, UNKNOWN, None, UNKNOWN,
        "outcome unknown: the send was interrupted (Redis lost mid-send)", 1, False,
    )  # fmt: skip


def _refusal(outcome: SendOutcome) -> str | None:
    from ._failures import refusal_of

    refusal = refusal_of(outcome)
    return None if refusal is None else repr(refusal)


def _receiver_class() -> type[Any]:
    """taskiq's receiver, told of the shutdown as soon as it starts (taskiq's signal handler
    sets the event it is given): the worker stops claiming at once, and its chunks drain."""
    from taskiq.receiver import Receiver

    class DrainingReceiver(Receiver):
        async def listen(self, finish_event: asyncio.Event) -> None:
            async def drain_on_finish() -> None:
                await finish_event.wait()
                worker = _current()
                await worker.drain()
                # Everything this worker took is recorded or back on the queue. taskiq 0.13
                # with taskiq-redis 1.2 may still wait tens of seconds on the stream read it
                # had in flight: past a short grace, leave without it (nothing is lost).
                code = 2 if worker.refused else 0
                timer = threading.Timer(_EXIT_GRACE, os._exit, args=(code,))
                timer.daemon = True
                timer.start()

            watcher = asyncio.create_task(drain_on_finish())
            try:
                await super().listen(finish_event)
            finally:
                watcher.cancel()

    return DrainingReceiver


def run_worker(
    redis_url: str,
    *,
    concurrency: int,
    redeliver_after: float,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> int:
    """Run one worker process until SIGTERM/SIGINT; returns the exit code.

    With ``metrics_port``, the worker's Prometheus metrics are served on ``/metrics`` there
    while it runs.
    """
    global _worker
    from redis.asyncio import Redis
    from taskiq import TaskiqEvents, TaskiqState
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import start_listen

    from ..integrations.taskiq import setup_routee

    cipher = load_cipher()  # missing or malformed: the command says how to make one
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    broker = make_broker(redis_url, redeliver_after=redeliver_after)
    no_resend = RetryPolicy(retry_ambiguous_sends=False)
    metrics = None if metrics_port is None else _Metrics(metrics_port, metrics_host)
    hooks = {} if metrics is None else {"hooks": [metrics.hooks]}
    setup_routee(broker, max_concurrency=concurrency, retry=no_resend, **hooks)

    async def start(state: TaskiqState) -> None:
        global _worker
        if metrics is not None:
            await metrics.start()
        _worker = _Worker(Redis.from_url(redis_url, **redis_options()), cipher, concurrency)
        await _worker.start()
        logger.info("routee-viber worker %s: ready (concurrency %d)", _worker.id, concurrency)

    async def stop(state: TaskiqState) -> None:
        if _worker is not None:
            await _worker.close()
        if metrics is not None:
            await metrics.close()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, stop)
    receiver = _receiver_class()
    # taskiq imports the receiver by name: this module exposes the class it made.
    globals()["DrainingReceiver"] = receiver
    args = WorkerArgs(
        # An instance is taken as well as an import path.
        broker=broker,  # type: ignore[arg-type]
        modules=[],
        receiver=f"{__name__}:DrainingReceiver",
        workers=1,
        max_async_tasks=2,  # two chunks at a time: the next one's claims start as one ends
        max_prefetch=0,
        ack_type=_manual_ack(),
        shutdown_timeout=5,
        wait_tasks_timeout=None,  # the sends in flight drain whatever they take
    )
    start_listen(args)
    worker = _worker
    _worker = None
    return 2 if worker is not None and worker.refused else 0


class _Metrics:
    """The worker's Prometheus hooks and the ``/metrics`` page that shows them."""

    def __init__(self, port: int, host: str) -> None:
        try:
            from prometheus_client import CollectorRegistry

            from ..integrations.prometheus import PrometheusHooks, serve_metrics
        except ImportError:
            raise CommandError(
                "--metrics-port needs prometheus-client: "
                "pip install 'routee-viber-async[prometheus]'"
            ) from None
        registry = CollectorRegistry()
        self.hooks = PrometheusHooks(registry)
        self._server = serve_metrics(port, host=host, registry=registry)

    async def start(self) -> None:
        await self._server.start()
        logger.info("routee-viber worker: metrics on %s", self._server.url)

    async def close(self) -> None:
        await self._server.close()


def _manual_ack() -> Any:
    from taskiq.acks import AcknowledgeType

    return AcknowledgeType.MANUAL
