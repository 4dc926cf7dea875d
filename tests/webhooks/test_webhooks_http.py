"""The webhook endpoints over real loopback HTTP, for FastAPI (uvicorn) and aiohttp alike.

Each test runs twice through the ``serve_webhooks`` fixture: once against a FastAPI app served
by uvicorn, once against an aiohttp app; Routee is played by an ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from webhook_helpers import ServeWebhooks

from routee_viber_async import DeliveryCallback, DeliveryStatus, ModerationCallback
from routee_viber_async.webhooks import Deduplicator, DeliveryWaiter, with_token

SECRET = "s3cret-token"


class Recorder:
    """Async handlers that record what they got (and can be told to fail)."""

    def __init__(self) -> None:
        self.deliveries: list[DeliveryCallback] = []
        self.moderations: list[ModerationCallback] = []
        self.fail = 0

    async def on_delivery(self, callback: DeliveryCallback) -> None:
        await asyncio.sleep(0)
        self.deliveries.append(callback)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the database is down")

    async def on_moderation(self, callback: ModerationCallback) -> None:
        self.moderations.append(callback)

    @property
    def calls(self) -> int:
        return len(self.deliveries) + len(self.moderations)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def post(http: aiohttp.ClientSession, url: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
    data = json.dumps(body) if isinstance(body, dict | list) else body
    headers = {"Content-Type": "application/json"}
    async with http.post(url, data=data, headers=headers, **kwargs) as response:
        if response.content_type != "application/json":  # the framework's own 404, 405, ...
            return response.status, await response.text()
        return response.status, await response.json()


# -- good callbacks ----------------------------------------------------------------------------


async def test_delivery_and_moderation_callbacks_reach_their_handlers(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    moderation_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery, on_moderation=recorder.on_moderation
    ) as base:
        assert await post(http, f"{base}/routee/delivery", delivery_payload) == (200, {"ok": True})
        assert await post(http, f"{base}/routee/moderation", moderation_payload) == (
            200,
            {"ok": True},
        )

    [delivery] = recorder.deliveries
    assert delivery.tracking_id == "304177c4-2478-4c49-bcea-3b6cede1b064"
    assert delivery.status.name is DeliveryStatus.DELIVERED
    assert delivery.transactional_template is not None
    assert delivery.transactional_template.seq == 1747719911946
    [moderation] = recorder.moderations
    assert moderation.template_status == "REJECTED"
    assert moderation.variables == ["user_name"]


async def test_unknown_fields_and_statuses_are_accepted(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    delivery_payload["status"]["name"] = "RECALLED"
    delivery_payload["newField"] = {"nested": True}
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
    [delivery] = recorder.deliveries
    assert delivery.status.name == "RECALLED"
    assert delivery.extra == {"newField": {"nested": True}}


async def test_a_path_without_a_handler_is_not_served(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    moderation_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        status, _ = await post(http, f"{base}/routee/moderation", moderation_payload)
        async with http.get(f"{base}/routee/delivery") as response:
            get_status = response.status
    assert status == 404
    assert get_status == 405
    assert recorder.calls == 0


async def test_custom_paths_and_the_combined_endpoint(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    moderation_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery,
        on_moderation=recorder.on_moderation,
        delivery_path="/hooks/d",
        moderation_path=None,
        combined_path="/hooks/any",
    ) as base:
        assert (await post(http, f"{base}/hooks/d", delivery_payload))[0] == 200
        assert (await post(http, f"{base}/hooks/any", delivery_payload))[0] == 200
        assert (await post(http, f"{base}/hooks/any", moderation_payload))[0] == 200
        assert (await post(http, f"{base}/routee/moderation", moderation_payload))[0] == 404
        status, body = await post(http, f"{base}/hooks/any", {"hello": 1})
    assert status == 400
    assert "trackingId" in body["detail"]
    assert "templateStatus" in body["detail"]
    assert len(recorder.deliveries) == 2
    assert len(recorder.moderations) == 1


async def test_the_combined_endpoint_acknowledges_a_kind_without_handler(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    moderation_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery, combined_path="/routee") as base:
        answer = await post(http, f"{base}/routee", moderation_payload)
    assert answer == (200, {"ok": True, "ignored": True})
    assert recorder.calls == 0


async def test_a_plain_function_handler_and_a_delivery_waiter(
    serve_webhooks: ServeWebhooks, http: aiohttp.ClientSession, delivery_payload: dict[str, Any]
) -> None:
    waiter = DeliveryWaiter()
    async with serve_webhooks(on_delivery=waiter.feed) as base:
        waiting = asyncio.create_task(waiter.wait(delivery_payload["trackingId"], timeout=5))
        await asyncio.sleep(0)
        sent = {**delivery_payload, "status": {"name": "SENT"}}
        assert (await post(http, f"{base}/routee/delivery", sent))[0] == 200
        await asyncio.sleep(0.01)
        assert not waiting.done()
        assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
        resolved = await waiting
    assert isinstance(resolved, DeliveryCallback)
    assert resolved.status.name is DeliveryStatus.DELIVERED


# -- bad bodies: 400, and the handler is not called --------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "$: malformed JSON"),
        (b"", "$: empty body"),
        (b"[1, 2]", "$: expected a JSON object, not an array"),
        (b'{"status": {"name": "DELIVERED"}}', "$.trackingId: required field is missing"),
        (b'{"trackingId": "t-1"}', "$.status: required field is missing"),
        (b'{"trackingId": "t-1", "status": "DELIVERED"}', "$.status: expected a JSON object"),
        (b'{"trackingId": "t-1", "status": {"name": 7}}', "$.status.name: expected a string"),
    ],
)
async def test_a_malformed_delivery_body_is_answered_400(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    body: bytes,
    detail: str,
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        status, answer = await post(http, f"{base}/routee/delivery", body)
    assert status == 400
    assert answer["ok"] is False
    assert answer["error"] == "invalid_callback"
    assert detail in answer["detail"]
    assert recorder.calls == 0


@pytest.mark.parametrize("missing", ["templateId", "templateStatus"])
async def test_a_moderation_body_missing_a_field_is_answered_400(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    moderation_payload: dict[str, Any],
    missing: str,
) -> None:
    del moderation_payload[missing]
    async with serve_webhooks(on_moderation=recorder.on_moderation) as base:
        status, answer = await post(http, f"{base}/routee/moderation", moderation_payload)
    assert status == 400
    assert f"$.{missing}: required field is missing" in answer["detail"]
    assert recorder.calls == 0


async def test_a_400_never_echoes_the_body_s_values(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = [
        {"trackingId": "t-1", "status": {"name": "SENT", "updatedDate": "pin 482910"}},
        {"trackingId": "t-1", "status": "pin 482910"},
        '{"templateParams": {"pin": "482910"}',
    ]
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        for body in bodies:
            status, answer = await post(http, f"{base}/routee/delivery", body)
            assert status == 400
            assert "482910" not in json.dumps(answer)
    assert "482910" not in caplog.text
    assert recorder.calls == 0


# -- size limit: 413 ---------------------------------------------------------------------------


async def test_a_body_above_the_limit_is_answered_413(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    big = {**delivery_payload, "padding": "x" * 2000}
    async with serve_webhooks(on_delivery=recorder.on_delivery, max_body_size=1024) as base:
        status, answer = await post(http, f"{base}/routee/delivery", big)
        assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
    assert status == 413
    assert answer == {
        "ok": False,
        "error": "payload_too_large",
        "detail": "the body exceeds 1024 bytes",
    }
    assert len(recorder.deliveries) == 1


async def test_the_default_limit_is_64_kib(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    body = json.dumps({**delivery_payload, "padding": "x" * (64 * 1024)})
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        status, _ = await post(http, f"{base}/routee/delivery", body)
    assert status == 413
    assert recorder.calls == 0


async def test_a_chunked_body_is_cut_at_the_limit(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        yield json.dumps(delivery_payload)[:-1].encode() + b', "padding": "'
        for _ in range(total // 512):
            yield b"x" * 512
        yield b'"}'

    async with serve_webhooks(on_delivery=recorder.on_delivery, max_body_size=2048) as base:
        url = f"{base}/routee/delivery"
        small_status, _ = await post(http, url, chunks(512))  # no Content-Length, small
        status, answer = await post(http, url, chunks(8192))  # no Content-Length, too large
    assert small_status == 200
    assert status == 413
    assert answer["error"] == "payload_too_large"
    assert len(recorder.deliveries) == 1


# -- shared secret: 403 ------------------------------------------------------------------------


async def test_a_missing_or_wrong_token_is_answered_403(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery, secret=SECRET) as base:
        url = f"{base}/routee/delivery"
        missing = await post(http, url, delivery_payload)
        wrong = await post(http, with_token(url, "not-the-secret"), delivery_payload)
        prefix = await post(http, with_token(url, SECRET[:-1]), delivery_payload)
        empty = await post(http, f"{url}?token=", delivery_payload)
        good = await post(http, with_token(url, SECRET), delivery_payload)
    forbidden = (403, {"ok": False, "error": "forbidden"})
    assert missing == wrong == prefix == empty == forbidden
    assert good == (200, {"ok": True})
    assert len(recorder.deliveries) == 1


async def test_the_token_is_checked_before_the_body(
    serve_webhooks: ServeWebhooks, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery, secret=SECRET, max_body_size=10
    ) as base:
        status, _ = await post(http, f"{base}/routee/delivery", b"x" * 100)
    assert status == 403


async def test_several_secrets_for_rotation_and_a_custom_parameter(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery, secret=["old-one", "new-one"], token_param="key"
    ) as base:
        url = f"{base}/routee/delivery"
        old = await post(http, with_token(url, "old-one", param="key"), delivery_payload)
        new = await post(http, with_token(url, "new-one", param="key"), delivery_payload)
        other_param = await post(http, with_token(url, "new-one"), delivery_payload)
    assert old[0] == new[0] == 200
    assert other_param[0] == 403


# -- handler failures: 500, so that Routee retries ---------------------------------------------


async def test_a_raising_handler_is_answered_500(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder.fail = 1
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        first = await post(http, f"{base}/routee/delivery", delivery_payload)
        retry = await post(http, f"{base}/routee/delivery", delivery_payload)
    assert first == (500, {"ok": False, "error": "handler_failed"})
    assert retry == (200, {"ok": True})
    assert len(recorder.deliveries) == 2
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.name == "routee_viber_async.webhooks"
    assert "304177c4-2478-4c49-bcea-3b6cede1b064" in failure.getMessage()


# -- duplicates --------------------------------------------------------------------------------


async def test_a_repeated_callback_is_dropped_by_its_key(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    moderation_payload: dict[str, Any],
) -> None:
    dedup = Deduplicator()
    async with serve_webhooks(
        on_delivery=recorder.on_delivery,
        on_moderation=recorder.on_moderation,
        deduplicator=dedup,
    ) as base:
        url = f"{base}/routee/delivery"
        first = await post(http, url, delivery_payload)
        again = await post(http, url, delivery_payload)
        seen = {**delivery_payload, "status": {"name": "SEEN"}}
        next_status = await post(http, url, seen)
        for _ in range(2):
            await post(http, f"{base}/routee/moderation", moderation_payload)
    assert first == (200, {"ok": True})
    assert again == (200, {"ok": True, "duplicate": True})
    assert next_status == (200, {"ok": True})
    assert [c.status.name for c in recorder.deliveries] == ["DELIVERED", "SEEN"]
    assert len(recorder.moderations) == 1


async def test_a_failed_callback_is_not_taken_for_a_duplicate(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    recorder.fail = 1
    async with serve_webhooks(on_delivery=recorder.on_delivery, deduplicator=Deduplicator()) as b:
        statuses = [(await post(http, f"{b}/routee/delivery", delivery_payload))[0] for _ in "abc"]
    assert statuses == [500, 200, 200]
    assert len(recorder.deliveries) == 2  # the failure and Routee's retry; then a duplicate
