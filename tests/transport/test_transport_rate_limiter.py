"""``RouteeViberClient(rate_limiter=)`` and ``send_many(rate_limit=)`` with a RateLimiter: every
HTTP attempt waits for the client's limiter; a 429's ``Retry-After`` pauses both limiters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from transport_helpers import APP_ID, APP_SECRET, FakeRoutee, reply

from routee_viber_async import (
    ClientCredentials,
    RateLimiter,
    RateLimitError,
    RateLimiterUnavailableError,
    RetryPolicy,
    RouteeViberClient,
    SendMessage,
    ValidationError,
    outcome_unknown,
)
from routee_viber_async._ratelimit import LocalRateLimiter


class RecordingLimiter:
    """A RateLimiter that lets everything through and remembers what it was asked."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.acquired = 0
        self.pauses: list[float] = []
        self.fail = fail

    async def acquire(self) -> None:
        self.acquired += 1
        if self.fail is not None:
            raise self.fail

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


MakeClient = Callable[..., RouteeViberClient]


@pytest.fixture
async def make_client(routee: FakeRoutee) -> AsyncIterator[MakeClient]:
    made: list[RouteeViberClient] = []

    def make(**options: Any) -> RouteeViberClient:
        options.setdefault("retry", RetryPolicy.disabled())
        client = RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=routee.base_url,
            auth_url=routee.auth_url,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def message(i: int = 0) -> SendMessage:
    return SendMessage("sender-1", f"+3069{i:08d}", "tpl-1", "en", {"pin": "123456"})


def test_recording_limiter_is_a_rate_limiter() -> None:
    assert isinstance(RecordingLimiter(), RateLimiter)
    assert isinstance(LocalRateLimiter(5), RateLimiter)


async def test_the_client_limiter_is_acquired_before_every_http_attempt(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    limiter = RecordingLimiter()
    client = make_client(rate_limiter=limiter, retry=RetryPolicy.no_wait())
    routee.script(reply(500), reply(502))  # two failures, then the fake's default 200
    await client._transport.request("GET", "/x")
    assert routee.api_hits == 3
    assert limiter.acquired == 3


async def test_a_429_retry_after_pauses_the_client_limiter(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    limiter = RecordingLimiter()
    client = make_client(rate_limiter=limiter)
    routee.script(reply(429, {}, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError):
        await client._transport.request("GET", "/x")
    assert limiter.pauses == [7.0]


async def test_the_pause_is_capped_by_max_retry_after_and_follows_sleep_scale(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    limiter = RecordingLimiter()
    policy = RetryPolicy(max_attempts=2, max_retry_after=3, sleep_scale=0.01)
    client = make_client(rate_limiter=limiter, retry=policy)
    routee.script(
        reply(429, {}, headers={"Retry-After": "100"}), reply(429, {}, headers={"Retry-After": "1"})
    )
    with pytest.raises(RateLimitError):
        await client._transport.request("GET", "/x")
    # Both attempts were refused: each 429 paused the limiter (the retry's one too).
    assert limiter.pauses == pytest.approx([0.03, 0.01])


async def test_a_429_without_retry_after_pauses_nothing(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    limiter = RecordingLimiter()
    client = make_client(rate_limiter=limiter)
    routee.script(reply(429, {}))
    with pytest.raises(RateLimitError):
        await client._transport.request("GET", "/x")
    assert limiter.pauses == []


async def test_a_429_in_send_many_pauses_the_fanouts_limiter_too(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    client_limiter, fanout_limiter = RecordingLimiter(), RecordingLimiter()
    client = make_client(rate_limiter=client_limiter)
    routee.script(reply(429, {}, headers={"Retry-After": "2"}))
    outcomes = [o async for o in client.messages.send_many([message()], rate_limit=fanout_limiter)]
    assert isinstance(outcomes[0].error, RateLimitError)
    assert fanout_limiter.acquired == 1
    assert fanout_limiter.pauses == [2.0]
    assert client_limiter.pauses == [2.0]


async def test_one_limiter_given_to_both_is_paused_once(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    limiter = RecordingLimiter()
    client = make_client(rate_limiter=limiter)
    routee.script(reply(429, {}, headers={"Retry-After": "2"}))
    [o async for o in client.messages.send_many([message()], rate_limit=limiter)]
    assert limiter.pauses == [2.0]


async def test_a_numeric_rate_limiter_paces_locally(make_client: MakeClient) -> None:
    client = make_client(rate_limiter=50)
    assert isinstance(client._transport._shared.rate_limiter, LocalRateLimiter)


@pytest.mark.parametrize("value", [0, -2, "10", float("inf"), True, object()])
def test_a_bad_rate_limiter_is_refused(make_client: MakeClient, value: object) -> None:
    with pytest.raises(ValidationError, match="rate_limiter"):
        make_client(rate_limiter=value)


async def test_a_local_pause_holds_every_acquire() -> None:
    import asyncio

    limiter = LocalRateLimiter(1000)
    loop = asyncio.get_running_loop()
    limiter.pause(0.2)
    began = loop.time()
    await limiter.acquire()
    assert loop.time() - began >= 0.19


async def test_an_unreachable_shared_limiter_gives_its_input_an_outcome_and_stops(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    down = RateLimiterUnavailableError("Redis at 127.0.0.1:1 is unavailable for the rate limit")
    limiter = RecordingLimiter(fail=down)
    client = make_client()
    outcomes = []

    async def consume() -> None:
        async for outcome in client.messages.send_many(
            (message(i) for i in range(10)), concurrency=1, rate_limit=limiter
        ):
            outcomes.append(outcome)

    with pytest.raises(RateLimiterUnavailableError):
        await consume()
    # The input that waited for the limiter has its outcome: certainly not sent.
    assert [o.index for o in outcomes] == [0]
    assert outcomes[0].error is down
    assert not outcome_unknown(outcomes[0].error)
    assert routee.api_hits == 0


async def test_an_unreachable_client_limiter_fails_the_call_before_any_request(
    routee: FakeRoutee, make_client: MakeClient
) -> None:
    down = RateLimiterUnavailableError("down")
    client = make_client(rate_limiter=RecordingLimiter(fail=down))
    with pytest.raises(RateLimiterUnavailableError) as caught:
        await client.messages.send(message())
    assert caught.value.attempts == 0
    assert not outcome_unknown(caught.value)
    assert routee.api_hits == 0
