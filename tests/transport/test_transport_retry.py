"""Retries: what is retried, Retry-After, ambiguity, budget, deadline, attempts, cancellation."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import itertools
import time
import types
import weakref
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from transport_helpers import FakeRoutee, MakeTransport, reply, wait_until

from routee_viber_async import _retry
from routee_viber_async._auth import StaticToken
from routee_viber_async._config import RetryBudget, RetryPolicy
from routee_viber_async._errors import (
    APIStatusError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnprocessableError,
    ValidationError,
    outcome_unknown,
)
from routee_viber_async._retry import (
    RetryQuota,
    classify,
    parse_retry_after,
    transport_error_from,
)

STATIC = StaticToken("static-token-STATIC")
NO_JITTER = {"initial_backoff": 0.0, "max_backoff": 0.0}

# -- units -------------------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    later = email.utils.format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, now=now) == 42.0
    earlier = email.utils.format_datetime(now - timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 -0000", now=now) == 10.0


def test_classify() -> None:
    def status(code: int) -> APIStatusError:
        cls = ServerError if code >= 500 else APIStatusError
        return cls("x", status=code)

    assert classify(status(503)) == ("HTTP 503", False, False)
    assert classify(RateLimitError("x", status=429)) == ("HTTP 429", False, False)
    for code in (500, 502, 504):
        decision = classify(status(code))
        assert decision is not None
        assert decision.ambiguous
    for code in (400, 401, 403, 404, 409, 422, 501):
        assert classify(status(code)) is None
    assert classify(ValidationError([("A", "b")])) is None
    assert classify(TransportError("x", request_sent=False)) == (
        "connection error before sending",
        False,
        False,
    )
    assert classify(RequestTimeoutError("x", request_sent=True)) == ("timeout", True, True)
    assert classify(ValueError("x")) is None
    assert classify(asyncio.CancelledError()) is None


def test_transport_error_mapping_and_request_sent() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    cases: list[tuple[BaseException, type[TransportError], bool]] = [
        (refused, TransportError, False),
        (aiohttp.ConnectionTimeoutError("connect"), RequestTimeoutError, False),
        (aiohttp.SocketTimeoutError("read"), RequestTimeoutError, True),
        (TimeoutError(), RequestTimeoutError, True),
        (aiohttp.ServerDisconnectedError(), TransportError, True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), TransportError, True),
        (aiohttp.ClientPayloadError("cut"), TransportError, True),
    ]
    for exc, error_type, sent in cases:
        error = transport_error_from(exc, "POST", "/p?secret=1")
        assert type(error) is error_type, exc
        assert error.request_sent is sent, exc
        assert error.path == "/p"
        assert "secret" not in str(error)


def test_a_write_refused_on_a_closing_connection_counts_as_maybe_sent() -> None:
    """aiohttp has no typed signal that nothing was written (its "Cannot write to closing
    transport" and a connection lost after writing are the same type): both are maybe sent,
    and no error text of aiohttp's decides."""
    closing = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    wrapped = aiohttp.ClientOSError(None, "Can not write request body for http://h/p?q=1")
    wrapped.__cause__ = closing
    for exc in (closing, wrapped, aiohttp.ClientConnectionResetError("Connection lost")):
        error = transport_error_from(exc, "POST", "/p")
        assert error.request_sent is True
        assert outcome_unknown(error)
        assert "q=1" not in str(error)


def test_quota() -> None:
    quota = RetryQuota(RetryBudget(capacity=12, retry_cost=5, timeout_cost=10, success_refund=1))
    assert quota.acquire(timeout=False) == 5
    assert quota.acquire(timeout=False) == 5
    assert quota.acquire(timeout=False) is None  # 2 left
    assert quota.level == 2
    quota.on_first_success()
    quota.release(5)
    assert quota.level == 8
    assert quota.acquire(timeout=True) is None
    quota.release(100)
    assert quota.level == 12  # never above capacity
    assert quota.acquire(timeout=True) == 10


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1)
    assert RetryPolicy.no_wait(max_attempts=2) == RetryPolicy(max_attempts=2, sleep_scale=0)
    assert RetryPolicy.disabled().max_attempts == 1


# -- what is retried ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, ValidationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableError),
    ],
)
async def test_client_errors_are_never_retried(
    routee: FakeRoutee, make_transport: MakeTransport, status: int, error_type: type[Exception]
) -> None:
    routee.script(*[reply(status, {"code": str(status)})] * 3)
    with pytest.raises(error_type) as caught:
        await make_transport(token_provider=STATIC).request("GET", "/x")
    assert caught.value.attempts == 1
    assert routee.api_hits == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(
    routee: FakeRoutee, make_transport: MakeTransport, status: int
) -> None:
    routee.script(reply(status), reply(status))
    data, attempts = await make_transport(token_provider=STATIC).request("GET", "/x")
    assert data == {"ok": True, "n": 3}
    assert attempts == 3


async def test_max_attempts_and_attempts_on_the_error(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(*[reply(503)] * 10)
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy.no_wait(max_attempts=3))
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 3
    assert routee.api_hits == 3


async def test_connect_errors_are_retried_even_for_posts(
    make_transport: MakeTransport, closed_port: int
) -> None:
    transport = make_transport(
        token_provider=STATIC,
        base_url=f"http://127.0.0.1:{closed_port}",
        retry=RetryPolicy.no_wait(max_attempts=3, retry_ambiguous_sends=False),
    )
    with pytest.raises(TransportError) as caught:
        await transport.request("POST", "/m", body=b"{}")
    assert caught.value.request_sent is False
    assert caught.value.attempts == 3


async def test_first_attempt_success_does_not_touch_tenacity(
    routee: FakeRoutee, make_transport: MakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[object] = []

    class CountingRetrying(_retry.AsyncRetrying):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            loops.append(self)

    monkeypatch.setattr(_retry, "AsyncRetrying", CountingRetrying)
    transport = make_transport(token_provider=STATIC)
    for _ in range(3):
        await transport.request("GET", "/x")
    assert loops == []
    routee.script(reply(404))
    with pytest.raises(NotFoundError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 1
    assert len(loops) == 1  # tenacity decided that a 404 is not retried
    routee.script(reply(503))
    assert (await transport.request("GET", "/x")).attempts == 2
    assert len(loops) == 2


async def test_interleaved_retried_calls_keep_their_own_state(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    """One tenacity controller serves every call of a view; calls retrying at the same time
    must each count their own attempts and stop at their own limit."""
    failures = {f"/c{k}-{copy}": k for k in range(6) for copy in range(4)}
    hits: Counter[str] = Counter()

    async def step(request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        hits[path] += 1
        await asyncio.sleep(0.001 * (hits[path] % 3))  # answers overtake one another
        if hits[path] <= failures[path]:
            return web.json_response({"code": "503"}, status=503)
        return web.json_response({"path": path, "attempt": hits[path]})

    routee.script(*[step] * sum(min(k + 1, 4) for k in failures.values()))
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy.no_wait(max_attempts=4))

    async def call(path: str) -> tuple[str, object]:
        try:
            data, attempts = await transport.request("POST", path, body=b"{}")
        except ServerError as exc:
            return path, ("failed", exc.attempts)
        return path, (data["path"], attempts)

    results = dict(await asyncio.gather(*(call(path) for path in failures)))
    for path, k in failures.items():
        expected = ("failed", 4) if k >= 4 else (path, k + 1)
        assert results[path] == expected, path
        assert hits[path] == min(k + 1, 4)


# -- the ambiguous-send switch -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_ambiguous_statuses_not_repeated_for_post_when_switched_off(
    routee: FakeRoutee, make_transport: MakeTransport, status: int
) -> None:
    routee.script(*[reply(status)] * 4)
    off = make_transport(
        token_provider=STATIC, retry=RetryPolicy.no_wait(retry_ambiguous_sends=False)
    )
    with pytest.raises(ServerError) as caught:
        await off.request("POST", "/m", body=b"{}")
    assert caught.value.attempts == 1
    assert routee.api_hits == 1
    # The same failure is repeated for an idempotent request...
    await off.request("GET", "/g")
    assert routee.api_hits == 5
    # ... and for a POST when ambiguous sends may be repeated.
    routee.script(reply(status))
    at_least_once = make_transport(
        token_provider=STATIC, retry=RetryPolicy.no_wait(retry_ambiguous_sends=True)
    )
    _, attempts = await at_least_once.request("POST", "/m", body=b"{}")
    assert attempts == 2


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_the_default_policy_sends_at_most_once(
    routee: FakeRoutee, make_transport: MakeTransport, status: int
) -> None:
    """17 #14: by default an ambiguous send is not repeated (no OTP goes out twice)."""
    assert RetryPolicy().retry_ambiguous_sends is False
    routee.script(*[reply(status)] * 4)
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy(sleep_scale=0))
    with pytest.raises(ServerError) as caught:
        await transport.request("POST", "/m", body=b"{}")
    assert caught.value.attempts == 1
    assert outcome_unknown(caught.value)
    assert routee.api_hits == 1


async def test_503_and_429_are_repeated_for_post_when_switched_off(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(503), reply(429, headers={"Retry-After": "0"}))
    transport = make_transport(
        token_provider=STATIC, retry=RetryPolicy.no_wait(retry_ambiguous_sends=False)
    )
    data, attempts = await transport.request("POST", "/m", body=b"{}")
    assert data["ok"] is True
    assert attempts == 3


async def test_timeout_after_write_not_repeated_for_post_when_switched_off(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(*[routee.hang] * 6)
    transport = make_transport(
        token_provider=STATIC,
        timeout=0.05,
        retry=RetryPolicy.no_wait(max_attempts=3, retry_ambiguous_sends=False),
    )
    with pytest.raises(RequestTimeoutError) as caught:
        await transport.request("POST", "/m", body=b"{}")
    assert caught.value.request_sent is True
    assert caught.value.attempts == 1
    assert routee.api_hits == 1
    with pytest.raises(RequestTimeoutError) as caught:
        await transport.request("GET", "/g")  # idempotent: repeated
    assert caught.value.attempts == 3
    assert routee.api_hits == 4


@pytest.mark.parametrize("status", [503, 429])
async def test_a_call_waiting_to_retry_keeps_no_response_alive(
    routee: FakeRoutee,
    make_transport: MakeTransport,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
) -> None:
    """Thousands of calls may wait out a 429 storm: each keeps its error, not the answer's
    response object (stream, timers, request info), nor the frames of the failed attempt."""
    live: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()
    real_init = aiohttp.ClientResponse.__init__

    def tracked_init(self: aiohttp.ClientResponse, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        live.add(self)

    monkeypatch.setattr(aiohttp.ClientResponse, "__init__", tracked_init)
    routee.script(reply(status, {"code": str(status)}, headers={"Retry-After": "1"}))
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy(sleep_scale=0.3))
    call = asyncio.ensure_future(transport.request("POST", "/m", body=b"{}"))
    await wait_until(lambda: routee.api_hits == 1)
    await asyncio.sleep(0.05)  # the call is now sleeping before its retry
    assert not call.done()
    gc.collect()
    assert len(live) == 0
    frames = [o for o in gc.get_objects() if isinstance(o, types.FrameType)]
    assert [f.f_code.co_name for f in frames if f.f_code.co_name == "_answer"] == []
    del frames
    _, attempts = await call
    assert attempts == 2


# -- Retry-After -------------------------------------------------------------------------------


def _gaps(routee: FakeRoutee) -> list[float]:
    times = [hit.at for hit in routee.hits]
    return [b - a for a, b in itertools.pairwise(times)]


async def test_retry_after_seconds_is_honoured_as_the_minimum_wait(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(429, headers={"Retry-After": "3"}))
    policy = RetryPolicy(sleep_scale=0.01, **NO_JITTER)  # 3 s -> 30 ms
    _, attempts = await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    assert attempts == 2
    [gap] = _gaps(routee)
    assert 0.03 <= gap < 0.03 + 0.25


async def test_retry_after_http_date_is_honoured(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=5)  # 4 to 5 s away at second resolution
    routee.script(reply(503, headers={"Retry-After": email.utils.format_datetime(when, True)}))
    policy = RetryPolicy(sleep_scale=0.01, **NO_JITTER)
    await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    [gap] = _gaps(routee)
    assert 0.039 <= gap < 0.05 + 0.25


async def test_retry_after_is_capped(routee: FakeRoutee, make_transport: MakeTransport) -> None:
    routee.script(reply(429, headers={"Retry-After": "100000"}))
    policy = RetryPolicy(sleep_scale=0.01, max_retry_after=4, deadline=None, **NO_JITTER)
    await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    [gap] = _gaps(routee)
    assert 0.04 <= gap < 0.04 + 0.25


async def test_backoff_is_capped_by_max_backoff(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(*[reply(503)] * 5)
    policy = RetryPolicy(
        max_attempts=6, initial_backoff=100, max_backoff=2, sleep_scale=0.01, deadline=None
    )
    started = time.monotonic()
    await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    assert all(gap < 0.02 + 0.1 for gap in _gaps(routee))  # never above 2 s (x 0.01)
    assert time.monotonic() - started < 1


# -- deadline ----------------------------------------------------------------------------------


async def test_deadline_stops_retrying(routee: FakeRoutee, make_transport: MakeTransport) -> None:
    routee.script(*[reply(503)] * 1000)
    policy = RetryPolicy(
        max_attempts=1000, initial_backoff=0.01, max_backoff=0.01, deadline=0.1, budget=None
    )
    started = time.monotonic()
    with pytest.raises(ServerError) as caught:
        await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    elapsed = time.monotonic() - started
    # Without the deadline the 1000 attempts would take 10 s: the margin only absorbs a loaded
    # machine, it does not make the test depend on timing.
    assert elapsed < 0.1 + 2.0
    attempts = caught.value.attempts
    assert 2 <= attempts < 1000
    assert attempts == routee.api_hits


async def test_no_sleep_past_the_deadline(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(429, headers={"Retry-After": "20"}))
    policy = RetryPolicy(deadline=5.0)  # real seconds: the 20 s wait would end past it
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await make_transport(token_provider=STATIC, retry=policy).request("GET", "/x")
    assert time.monotonic() - started < 0.5
    assert caught.value.attempts == 1


async def test_deadline_shortens_the_attempt_timeout(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(routee.hang)
    transport = make_transport(token_provider=STATIC, timeout=10, retry=RetryPolicy(deadline=0.05))
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        await transport.request("GET", "/x")
    assert time.monotonic() - started < 0.5


# -- budget ------------------------------------------------------------------------------------


async def test_budget_exhaustion_surfaces_errors_at_once_until_refilled(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, timeout_cost=10, success_refund=1)
    transport = make_transport(
        token_provider=STATIC, retry=RetryPolicy.no_wait(max_attempts=5, budget=budget)
    )
    routee.script(*[reply(503)] * 4)
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 3  # two retries paid
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 1  # budget spent
    for _ in range(5):  # five first-attempt successes refund 5 tokens: one retry
        await transport.request("GET", "/ok")
    routee.script(reply(503), reply(503))
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 2


async def test_budget_is_shared_by_views(routee: FakeRoutee, make_transport: MakeTransport) -> None:
    budget = RetryBudget(capacity=5, retry_cost=5)
    transport = make_transport(
        token_provider=STATIC, retry=RetryPolicy.no_wait(max_attempts=3, budget=budget)
    )
    view = transport.with_options(timeout=3)
    routee.script(reply(503), reply(503), reply(503))
    with pytest.raises(ServerError):
        await view.request("GET", "/x")
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 1


async def test_successful_retry_refunds_its_cost(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    budget = RetryBudget(capacity=10, retry_cost=5)
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy.no_wait(budget=budget))
    for _ in range(3):
        routee.script(reply(503))
        assert (await transport.request("GET", "/x"))[1] == 2
    quota = transport.quota
    assert quota is not None
    assert quota.level == 10


# -- a retry sleep holds no slot ---------------------------------------------------------------


async def test_retry_sleep_holds_no_slot(routee: FakeRoutee, make_transport: MakeTransport) -> None:
    async def first_503(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response({}, status=503, headers={"Retry-After": "10"})

    routee.script(first_503)
    transport = make_transport(
        token_provider=STATIC,
        max_concurrency=1,
        retry=RetryPolicy(sleep_scale=0.01, **NO_JITTER),  # sleeps 100 ms
    )
    sleeper = asyncio.create_task(transport.request("GET", "/sleeper"))
    await wait_until(lambda: routee.api_hits == 1)
    started = time.monotonic()
    await transport.request("GET", "/other")  # gets the only slot while the first one sleeps
    assert time.monotonic() - started < 0.05
    await sleeper
    assert [hit.path for hit in routee.hits] == ["/sleeper", "/other", "/sleeper"]


# -- cancellation ------------------------------------------------------------------------------


async def test_cancelled_call_releases_its_slot_and_is_not_retried(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(routee.hang)
    transport = make_transport(token_provider=STATIC, max_concurrency=1)
    call = asyncio.create_task(transport.request("GET", "/hang"))
    await wait_until(lambda: routee.api_hits == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not transport.semaphore.locked()
    assert (await asyncio.wait_for(transport.request("GET", "/next"), 1)).data == {
        "ok": True,
        "n": 2,
    }
    assert [hit.path for hit in routee.hits] == ["/hang", "/next"]


async def test_cancellation_inside_a_retry_attempt_is_not_retried(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(503), routee.hang)
    transport = make_transport(token_provider=STATIC, retry=RetryPolicy.no_wait(max_attempts=5))
    call = asyncio.create_task(transport.request("GET", "/x"))
    await wait_until(lambda: routee.api_hits == 2)  # tenacity's second attempt is in flight
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.02)
    assert routee.api_hits == 2
    assert not transport.semaphore.locked()


async def test_cancellation_during_the_backoff_sleep(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(503))
    transport = make_transport(
        token_provider=STATIC, retry=RetryPolicy(initial_backoff=30, max_backoff=30)
    )
    call = asyncio.create_task(transport.request("GET", "/x"))
    await wait_until(lambda: routee.api_hits == 1)
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert routee.api_hits == 1
