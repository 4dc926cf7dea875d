"""``client.tracking``: get, and wait (backoff, timeout, the not-yet-recorded grace)."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from client_helpers import BASE, TOKEN, all_calls, calls, only_call

from routee_viber_async import (
    DeliveryScope,
    DeliveryStatus,
    MessageKind,
    NotFoundError,
    RouteeViberClient,
    TrackingRecord,
    ValidationError,
    WaitTimeoutError,
)
from routee_viber_async.resources import _tracking

TRACKING_ID = "304177c4-2478-4c49-bcea-3b6cede1b064"
TRACKING = f"{BASE}/viber/tracking/{TRACKING_ID}"


def record(status: str) -> dict[str, Any]:
    return {
        "trackingId": TRACKING_ID,
        "status": {"status": status, "date": "2026-05-20T05:45:13.606Z"},
        "messageKind": "transactional_template",
    }


def not_found() -> dict[str, Any]:
    return {"status": 404, "payload": {"code": "404000000", "developerMessage": "not yet"}}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays ``tracking.wait`` sleeps, recorded instead of slept."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    fake = types.SimpleNamespace(
        sleep=sleep, get_running_loop=asyncio.get_running_loop, timeout_at=asyncio.timeout_at
    )
    monkeypatch.setattr(_tracking, "asyncio", fake)
    return slept


async def test_get_parses_the_seed_record(
    client: RouteeViberClient, mocked: aioresponses, seed_examples: dict[str, Any]
) -> None:
    wire = {**seed_examples["tracking_get"], "operatorCode": "30-01"}
    mocked.get(TRACKING, payload=wire)
    got = await client.tracking.get(TRACKING_ID)
    call = only_call(mocked, "GET", TRACKING)
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert call.kwargs["data"] is None
    assert isinstance(got, TrackingRecord)
    assert got.tracking_id == TRACKING_ID
    assert got.status is not None
    assert got.status.status is DeliveryStatus.DELIVERED
    assert got.is_final
    assert got.message_kind is MessageKind.TRANSACTIONAL_TEMPLATE
    assert got.created_at == datetime(2026, 5, 20, 5, 45, 10, 1000, tzinfo=UTC)
    block = got.transactional_template
    assert block is not None
    assert block.delivery_scope is DeliveryScope.PRIMARY_DEVICE
    assert block.seq == 1747719911946
    assert block.template_params == {"pin": "***", "minutes": "5"}
    assert got.template_id == block.template_id
    assert got.extra == {"operatorCode": "30-01"}


async def test_get_refuses_a_blank_id_before_any_request(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    with pytest.raises(ValidationError):
        await client.tracking.get("")
    assert all_calls(mocked) == []


async def test_wait_polls_with_backoff_until_a_final_status(
    client: RouteeViberClient, mocked: aioresponses, sleeps: list[float]
) -> None:
    for status in ("QUEUED", "QUEUED", "SENT", "SENT", "SENT", "DELIVERED"):
        mocked.get(TRACKING, payload=record(status))
    got = await client.tracking.wait(
        TRACKING_ID, timeout=30, poll_interval=0.1, max_poll_interval=0.25
    )
    assert got.status is not None
    assert got.status.status is DeliveryStatus.DELIVERED
    assert len(calls(mocked, "GET", TRACKING)) == 6
    assert sleeps == pytest.approx([0.1, 0.15, 0.225, 0.25, 0.25])


@pytest.mark.parametrize("final", ["DELIVERED", "SEEN", "FAILED", "UNDELIVERED", "EXPIRED"])
async def test_wait_returns_at_once_on_any_final_status(
    client: RouteeViberClient, mocked: aioresponses, sleeps: list[float], final: str
) -> None:
    mocked.get(TRACKING, payload=record(final))
    got = await client.tracking.wait(TRACKING_ID)
    assert got.status is not None
    assert got.status.status == final
    assert sleeps == []


async def test_wait_times_out(client: RouteeViberClient, mocked: aioresponses) -> None:
    mocked.get(TRACKING, payload=record("SENT"), repeat=True)
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as caught:
        await client.tracking.wait(TRACKING_ID, timeout=0.1, poll_interval=0.02)
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 1.0
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.tracking_id == TRACKING_ID
    assert caught.value.last_status == "SENT"
    assert caught.value.timeout == 0.1
    assert 2 <= len(calls(mocked, "GET", TRACKING)) <= 6


async def test_wait_times_out_while_a_poll_hangs(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    async def hang(url: object, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(10)
        return CallbackResult(payload=record("DELIVERED"))

    mocked.get(TRACKING, payload=record("QUEUED"))
    mocked.get(TRACKING, callback=hang)
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as caught:
        await client.tracking.wait(TRACKING_ID, timeout=0.15, poll_interval=0.01)
    assert time.monotonic() - started < 1.0  # not the hanging poll's 10 s
    assert caught.value.last_status == "QUEUED"


async def test_an_unknown_status_is_not_final(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.get(TRACKING, payload=record("WITH_CARRIER"), repeat=True)
    with pytest.raises(WaitTimeoutError) as caught:
        await client.tracking.wait(TRACKING_ID, timeout=0.05, poll_interval=0.01)
    assert caught.value.last_status == "WITH_CARRIER"


async def test_wait_tolerates_404_within_the_grace(
    client: RouteeViberClient, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(TRACKING, **not_found())
    mocked.get(TRACKING, **not_found())
    mocked.get(TRACKING, payload=record("DELIVERED"))
    got = await client.tracking.wait(TRACKING_ID, poll_interval=0.01, not_found_grace=5)
    assert got.is_final
    assert len(calls(mocked, "GET", TRACKING)) == 3
    assert len(sleeps) == 2


async def test_wait_raises_the_404_after_the_grace(
    client: RouteeViberClient, mocked: aioresponses
) -> None:
    mocked.get(TRACKING, repeat=True, **not_found())
    started = time.monotonic()
    with pytest.raises(NotFoundError) as caught:
        await client.tracking.wait(TRACKING_ID, timeout=5, poll_interval=0.01, not_found_grace=0.05)
    assert 0.05 <= time.monotonic() - started < 1.0
    assert caught.value.status == 404
    assert len(calls(mocked, "GET", TRACKING)) >= 2


async def test_wait_without_grace_raises_the_first_404(
    client: RouteeViberClient, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(TRACKING, repeat=True, **not_found())
    with pytest.raises(NotFoundError):
        await client.tracking.wait(TRACKING_ID, not_found_grace=0)
    assert len(calls(mocked, "GET", TRACKING)) == 1
    assert sleeps == []
