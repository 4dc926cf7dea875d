"""The Redis journal's claim script, on the real Redis: the same claim sent twice (redis-py
sends a command again when the connection dropped before its answer) claims the same rows."""

from __future__ import annotations

from redis.asyncio import Redis

from routee_viber_async.cli._redis_journal import Claim, RedisRun

_CLAIMS: list[Claim] = [(0, "+306900000000", 1001, None), (1, "+306900000001", 1002, None)]


async def test_a_claim_sent_again_claims_the_same_rows(redis: Redis, key: str) -> None:
    run = RedisRun(redis, key)
    epoch = await run.start({"total": "2"})
    assert await run.claim("worker-a", epoch, _CLAIMS) == [0, 1]
    # Its first answer lost with the connection: the same command again. Before, the rows
    # were refused as taken, and stayed pending under a live worker that never sent them.
    assert await run.claim("worker-a", epoch, _CLAIMS) == [0, 1]
    assert await run.holders() == {0: "worker-a", 1: "worker-a"}
    # Another claim of the same rows (its own seqs) still gets none of them.
    other: list[Claim] = [(0, "+306900000000", 2001, None), (1, "+306900000001", 2002, None)]
    assert await run.claim("worker-b", epoch, other) == []
    assert await run.holders() == {0: "worker-a", 1: "worker-a"}


async def test_a_claim_sent_again_after_the_stop_gives_its_rows_back(
    redis: Redis, key: str
) -> None:
    run = RedisRun(redis, key)
    epoch = await run.start({"total": "2"})
    assert await run.claim("worker-a", epoch, _CLAIMS) == [0, 1]
    await run.stop(epoch)
    # The first run's answer is lost; the second says stopped, so the worker sends none of
    # them: none may stay held.
    assert await run.claim("worker-a", epoch, _CLAIMS) is None
    assert await run.holders() == {}
    assert [record async for record in run.scan()] == []
