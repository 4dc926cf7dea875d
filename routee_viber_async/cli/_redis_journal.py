"""The distributed ``send-many`` journal, in Redis: at most once across every worker.

Keys of run ``RUN`` (each with the run's TTL, ``--retention``, renewed as the run goes):

- ``routee-viber:run:RUN:meta`` (hash): the run's fingerprint (input SHA-256, sender,
  template, language), the rate, the account and key ids (never the credentials or the key),
  the coordinator's ``epoch`` and ``stopped`` (the last epoch stopped by Ctrl-C);
- ``routee-viber:run:RUN:rows`` (hash): input index -> the row's journal entry, JSON with its
  state (``pending``, ``sent``, ``failed``, ``unknown``), ``seq``, recipient, tracking id,
  status, error and attempts: no pin, no parameter;
- ``routee-viber:run:RUN:claimed`` (hash): index -> the worker holding the row ``pending``;
- ``routee-viber:run:RUN:outcomes`` (stream): each outcome as recorded, which the coordinator
  reads into the results file and trims behind it;
- ``routee-viber:run:RUN:rate``: the run's cluster-wide rate limiter (``RedisRateLimiter``);
- ``routee-viber:worker:ID`` (string, a few seconds' TTL, renewed while the worker lives).

The queue of chunks (``routee-viber:chunks``, taskiq's stream) holds only sealed chunks.

A row is *claimed* (one script call for a batch of rows, each checked and written atomically)
with its ``seq`` before its first attempt: a new row only if the journal has none, a row sent
again only if its entry is still the one the coordinator saw (same ``seq``, ``unknown`` or
``failed``). A redelivered chunk therefore skips every row claimed or final. An outcome is
recorded only over the claim of the same ``seq``, and goes to the stream in the same script.
A row whose worker died while holding it is marked ``unknown`` (by the coordinator, which sees
that the worker's liveness key expired).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _json
from ._journal import FAILED, PENDING, SENT, UNKNOWN, RowRecord

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CHUNK_QUEUE", "DEFAULT_RETENTION", "RedisRun", "run_prefix", "worker_key"]

#: The taskiq stream that holds every run's sealed chunks.
CHUNK_QUEUE = "routee-viber:chunks"
#: Seven days, in seconds.
DEFAULT_RETENTION = 7 * 86_400


def run_prefix(run_id: str) -> str:
    """The prefix of every key of a run."""
    return f"routee-viber:run:{run_id}:"


def worker_key(worker_id: str) -> str:
    """The liveness key of a worker."""
    return f"routee-viber:worker:{worker_id}"


# KEYS: rows, claimed, meta, outcomes, rate. ARGV: ttl (s), epoch, worker, then per row
# index, previous seq ('0': new), new seq, recipient. Answers the indexes claimed, or -1 when
# the run was stopped for this epoch (nothing claimed).
#
# The same command twice claims the same rows: redis-py sends it again when the connection
# dropped before its answer (a Redis restart), and a row already pending under this claim's
# own new seq was claimed by its first run. (Refused as taken, it would stay pending under a
# live worker that never sends it, and the run would never end.) A stopped run gives such rows
# back, as the first run's answer would have been -1.
_CLAIM = """
local stopped = tonumber(redis.call('HGET', KEYS[3], 'stopped') or '-1') >= tonumber(ARGV[2])
local claimed = {}
for i = 4, #ARGV, 4 do
  local idx, prev, seq = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local cur = redis.call('HGET', KEYS[1], idx)
  local free, again, row = false, false, nil
  if not cur then
    free = prev == '0'
  else
    row = cjson.decode(cur)
    again = row.s == 'pending' and row.q == seq
    free = row.q == prev and (row.s == 'unknown' or row.s == 'failed')
  end
  if stopped then
    if again then
      if type(row.p) == 'string' then redis.call('HSET', KEYS[1], idx, row.p)
      else redis.call('HDEL', KEYS[1], idx) end
      redis.call('HDEL', KEYS[2], idx)
    end
  elseif free then
    redis.call('HSET', KEYS[1], idx,
      cjson.encode({s = 'pending', q = seq, to = ARGV[i + 3], w = ARGV[3], p = cur}))
    redis.call('HSET', KEYS[2], idx, ARGV[3])
    claimed[#claimed + 1] = idx
  elseif again then
    claimed[#claimed + 1] = idx
  end
end
if stopped then return -1 end
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
return claimed
"""

# KEYS: rows, claimed, outcomes. ARGV: ttl, then per row index, entry (JSON with its seq 'q').
# An outcome replaces the row's claim of the same seq (or the unknown a dead worker's claim
# became, if the worker was alive after all); it goes to the stream in the same step.
_RECORD = """
for i = 2, #ARGV, 2 do
  local idx, entry = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], idx)
  if cur then
    local row = cjson.decode(cur)
    local new = cjson.decode(entry)
    if row.q == new.q and (row.s == 'pending' or (row.s == 'unknown' and new.s ~= 'unknown')) then
      redis.call('HSET', KEYS[1], idx, entry)
      redis.call('HDEL', KEYS[2], idx)
      redis.call('XADD', KEYS[3], '*', 'i', idx, 'r', entry)
    end
  end
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
return 1
"""

# KEYS: rows, claimed. ARGV: per row index, seq: rows claimed and certainly not sent get their
# previous entry back (kept in the claim as 'p'), or none.
_RELEASE = """
for i = 1, #ARGV, 2 do
  local idx = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], idx)
  if cur then
    local row = cjson.decode(cur)
    if row.s == 'pending' and row.q == ARGV[i + 1] then
      if type(row.p) == 'string' then redis.call('HSET', KEYS[1], idx, row.p)
      else redis.call('HDEL', KEYS[1], idx) end
      redis.call('HDEL', KEYS[2], idx)
    end
  end
end
return 1
"""

# KEYS: rows, claimed, outcomes. ARGV: worker, error, then indexes: the rows a dead worker
# still held become unknown (they may have reached Routee), through the stream like any outcome.
_ABANDONED = """
local n = 0
for i = 3, #ARGV do
  local idx = ARGV[i]
  if redis.call('HGET', KEYS[2], idx) == ARGV[1] then
    local cur = redis.call('HGET', KEYS[1], idx)
    redis.call('HDEL', KEYS[2], idx)
    if cur then
      local row = cjson.decode(cur)
      if row.s == 'pending' then
        row.s = 'unknown'; row.st = 'unknown'; row.e = ARGV[2]; row.a = 1; row.p = nil
        local entry = cjson.encode(row)
        redis.call('HSET', KEYS[1], idx, entry)
        redis.call('XADD', KEYS[3], '*', 'i', idx, 'r', entry)
        n = n + 1
      end
    end
  end
end
return n
"""


def entry_of(record: RowRecord, worker: str = "", refusal: str | None = None) -> bytes:
    """The journal entry of a row's outcome (JSON; ``seq`` as text: Lua numbers are doubles);
    ``refusal`` names a certain refusal (``--max-failures`` counts them)."""
    return _json.dumps(
        {
            "rf": refusal,
            "s": record.state,
            "q": str(record.seq),
            "to": record.to,
            "t": record.tracking_id,
            "st": record.status,
            "e": record.error,
            "a": record.attempts,
            "w": worker,
        }
    )


def record_of(index: int, entry: bytes | str) -> RowRecord:
    """The row an entry describes (a claim reads as ``pending``)."""
    data = _json.loads(entry)
    return RowRecord(
        index=index,
        to=str(data.get("to") or ""),
        seq=int(data["q"]),
        state=str(data["s"]),
        tracking_id=_text(data.get("t")),
        status=_text(data.get("st")),
        error=_text(data.get("e")),
        attempts=int(data.get("a") or 0),
        emitted=False,
    )


def _refusal(entry: bytes) -> str | None:
    return _text(_json.loads(entry).get("rf"))


def _text(value: Any) -> str | None:
    # cjson encodes a Lua nil field as absent; JSON null decodes in Lua as a userdata that
    # encodes back as null: both read as None.
    return value if isinstance(value, str) else None


#: ``(index, to, seq, previous)`` of a row a worker is about to claim; ``previous`` is the
#: ``(state, seq)`` the coordinator saw (None: a new row).
Claim = tuple[int, str, int, tuple[str, int] | None]


class RedisRun:
    """The keys and scripts of one run on one Redis connection (pool)."""

    def __init__(self, redis: Redis, run_id: str, retention: int = DEFAULT_RETENTION) -> None:
        self.redis = redis
        self.run_id = run_id
        self.retention = retention
        prefix = run_prefix(run_id)
        self.meta = prefix + "meta"
        self.rows = prefix + "rows"
        self.claimed = prefix + "claimed"
        self.outcomes = prefix + "outcomes"
        self.rate_key = prefix + "rate"
        self._claim = redis.register_script(_CLAIM)
        self._record = redis.register_script(_RECORD)
        self._release = redis.register_script(_RELEASE)
        self._abandoned = redis.register_script(_ABANDONED)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key of the run (the liveness keys of workers apart)."""
        return (self.meta, self.rows, self.claimed, self.outcomes, self.rate_key)

    # -- the coordinator's side --

    async def read_meta(self) -> dict[str, str]:
        """The run's meta hash, as text."""
        raw = await self.redis.hgetall(self.meta)
        return {_decode(k): _decode(v) for k, v in raw.items()}

    async def start(self, fields: dict[str, str]) -> int:
        """Record the run's fields (first start) and begin a new epoch; returns it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.meta, mapping=dict[Any, Any](fields))
            pipe.hincrby(self.meta, "epoch", 1)
            pipe.expire(self.meta, self.retention)
            _, epoch, _ = await pipe.execute()
        await self.keep()
        return int(epoch)

    async def keep(self) -> None:
        """Renew the TTL of every key of the run."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                pipe.expire(key, self.retention)
            await pipe.execute()

    async def stop(self, epoch: int) -> None:
        """Workers skip the chunks of ``epoch`` and before (Ctrl-C)."""
        await self.redis.hset(self.meta, "stopped", str(epoch))

    async def last_outcome_id(self) -> str:
        """The id of the stream's last outcome ("0-0" if none): read after it."""
        last: Any = await self.redis.xrevrange(self.outcomes, count=1)
        return _decode(last[0][0]) if last else "0-0"

    async def scan(self) -> AsyncIterator[RowRecord]:
        """Every row of the journal (pages of ``HSCAN``: memory stays flat)."""
        async for field, value in self.redis.hscan_iter(self.rows, count=1000):
            yield record_of(int(field), value)

    async def read_outcomes(
        self, after: str, count: int, block_ms: int
    ) -> list[tuple[str, RowRecord, str | None]]:
        """The outcomes after stream id ``after``, waiting up to ``block_ms`` for one (0: not
        at all): each ``(stream id, row, refusal)``."""
        block = block_ms or None  # XREAD's BLOCK 0 would wait forever
        found: Any = await self.redis.xread({self.outcomes: after}, count=count, block=block)
        if not found:
            return []
        return [
            (_decode(entry_id), record_of(int(fields[b"i"]), fields[b"r"]), _refusal(fields[b"r"]))
            for entry_id, fields in found[0][1]
        ]

    async def trim(self, up_to: str) -> None:
        """Drop the outcomes before ``up_to`` (the coordinator has recorded them)."""
        await self.redis.xtrim(self.outcomes, minid=up_to)

    async def holders(self) -> dict[int, str]:
        """Index -> worker of every row held ``pending`` (at most the workers' concurrency)."""
        raw = await self.redis.hgetall(self.claimed)
        return {int(k): _decode(v) for k, v in raw.items()}

    async def dead(self, workers: Iterable[str]) -> list[str]:
        """The workers among ``workers`` whose liveness key is gone."""
        names = sorted(set(workers))
        if not names:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(worker_key(name))
            alive = await pipe.execute()
        return [name for name, up in zip(names, alive, strict=True) if not up]

    async def abandon(self, worker: str, indexes: Sequence[int]) -> int:
        """The rows a dead worker held become unknown; how many did."""
        error = (
            "outcome unknown: the worker sending it stopped (killed or lost) while this send "
            "was in flight"
        )
        keys = [self.rows, self.claimed, self.outcomes]
        return int(await self._abandoned(keys=keys, args=[worker, error, *indexes]))

    # -- the workers' side --

    async def claim(self, worker: str, epoch: int, rows: Sequence[Claim]) -> list[int] | None:
        """Claim rows before their first attempt; the indexes claimed (the others are claimed
        or final already), or None when the coordinator stopped this epoch."""
        args: list[Any] = [self.retention, epoch, worker]
        for index, to, seq, previous in rows:
            args += [index, 0 if previous is None else previous[1], seq, to]
        keys = [self.rows, self.claimed, self.meta, self.outcomes]
        answer = await self._claim(keys=keys, args=args)
        if answer == -1:
            return None
        return [int(index) for index in answer]

    async def record(self, records: Sequence[tuple[RowRecord, str | None]], worker: str) -> None:
        """Record ``(row, refusal)`` outcomes (each over its own claim) and put them on the
        stream."""
        args: list[Any] = [self.retention]
        for record, refusal in records:
            args += [record.index, entry_of(record, worker, refusal)]
        await self._record(keys=[self.rows, self.claimed, self.outcomes], args=args)

    async def release(self, rows: Sequence[tuple[int, int]]) -> None:
        """``(index, seq)`` rows claimed and certainly not sent: back as they were."""
        args: list[Any] = []
        for index, seq in rows:
            args += [index, seq]
        if args:
            await self._release(keys=[self.rows, self.claimed], args=args)


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ += ["FAILED", "PENDING", "SENT", "UNKNOWN", "Claim", "entry_of", "record_of"]
