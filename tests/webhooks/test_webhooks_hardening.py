"""Issue 17 #7 and #15: forged callbacks, leaked tokens, foreign sources, odd bodies.

Over real loopback HTTP, for FastAPI (uvicorn) and aiohttp alike (the ``serve_webhooks``
fixture), unless a test is about one framework's specifics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aioresponses import aioresponses
from webhook_helpers import Integration, ServeWebhooks, fastapi_app

from routee_viber_async import DeliveryCallback, RetryPolicy, RouteeViberClient, StaticToken
from routee_viber_async.integrations.fastapi import COMBINED_ROUTE, DELIVERY_ROUTE
from routee_viber_async.webhooks import (
    ROUTEE_CALLBACK_HOST,
    Deduplicator,
    RedactTokenFilter,
    SourceAllowlist,
    is_json_content_type,
    with_token,
)

# The client tests' aioresponses compatibility shim (aiohttp 3.14), reused rather than copied.
sys.path.append(str(Path(__file__).parents[1] / "client"))
from client_helpers import install_compat

SECRET = "s3cret-token-value"
TRACKING_ID = "304177c4-2478-4c49-bcea-3b6cede1b064"


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[DeliveryCallback] = []

    async def on_delivery(self, callback: DeliveryCallback) -> None:
        self.deliveries.append(callback)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = dict(headers or {})
    skip: list[str] = []
    if content_type is None:
        skip.append("Content-Type")  # aiohttp would add application/octet-stream
    else:
        all_headers["Content-Type"] = content_type
    async with http.post(url, data=data, headers=all_headers, skip_auto_headers=skip) as response:
        if response.content_type != "application/json":
            return response.status, await response.text()
        return response.status, await response.json()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "routee_viber_async.webhooks" and r.levelno == logging.WARNING
    ]


# -- no secret: a warning when the app starts ---------------------------------------------------


async def test_an_endpoint_without_a_secret_warns_once_at_start_up(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="routee_viber_async.webhooks")
    async with serve_webhooks(on_delivery=recorder.on_delivery, combined_path="/routee") as base:
        started = warnings_of(caplog)
        for _ in range(2):
            assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
    [warning] = started
    assert "forge" in warning
    assert "secret" in warning
    assert warnings_of(caplog) == started  # once, not per request or per endpoint


async def test_an_endpoint_with_a_secret_does_not_warn(
    serve_webhooks: ServeWebhooks, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="routee_viber_async.webhooks")
    async with serve_webhooks(on_delivery=recorder.on_delivery, secret=SECRET):
        pass
    assert warnings_of(caplog) == []


# -- path-token routes -------------------------------------------------------------------------


async def test_a_path_token_route_takes_the_secret_as_a_segment(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery,
        secret=SECRET,
        delivery_path="/routee/delivery/{token}",
    ) as base:
        good = await post(http, f"{base}/routee/delivery/{SECRET}", delivery_payload)
        wrong = await post(http, f"{base}/routee/delivery/{SECRET[:-1]}", delivery_payload)
        query = await post(http, with_token(f"{base}/routee/delivery/x", SECRET), delivery_payload)
        bare = await post(http, f"{base}/routee/delivery", delivery_payload)
    assert good == (200, {"ok": True})
    assert wrong == query == (403, {"ok": False, "error": "forbidden"})
    assert bare[0] in (404, 405)
    assert len(recorder.deliveries) == 1


@pytest.mark.parametrize("route", [DELIVERY_ROUTE, COMBINED_ROUTE])
def test_a_path_token_route_builds_its_url(integration: Integration, route: str) -> None:
    app = integration.app(
        on_delivery=Recorder().on_delivery,
        secret=SECRET,
        delivery_path="/routee/delivery/{token}",
        combined_path="/routee/{token}",
    )
    expected = {DELIVERY_ROUTE: "/routee/delivery", COMBINED_ROUTE: "/routee"}[route]
    assert integration.path_for(app, route, token=SECRET) == f"{expected}/{SECRET}"


def test_the_fastapi_path_token_route_documents_the_parameter() -> None:
    app = fastapi_app(
        on_delivery=Recorder().on_delivery, secret=SECRET, delivery_path="/routee/delivery/{token}"
    )
    operation = app.openapi()["paths"]["/routee/delivery/{token}"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("token", "path", True)
    ]


# -- the access logs: RedactTokenFilter on real uvicorn and aiohttp records --------------------


@pytest.fixture
def access_logger(integration: Integration) -> str:
    return integration.access_logger


async def test_the_redact_filter_masks_both_tokens_in_real_access_log_records(
    serve_webhooks: ServeWebhooks,
    access_logger: str,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=access_logger)
    logger = logging.getLogger(access_logger)
    redact = RedactTokenFilter()
    logger.addFilter(redact)
    try:
        async with serve_webhooks(
            access_log=True,
            on_delivery=recorder.on_delivery,
            secret=SECRET,
            delivery_path="/routee/delivery/{token}",
            combined_path="/routee",
        ) as base:
            assert (await post(http, f"{base}/routee/delivery/{SECRET}", delivery_payload))[
                0
            ] == 200
            url = with_token(f"{base}/routee", SECRET) + "&x=1"
            assert (await post(http, url, delivery_payload))[0] == 200
            records = await wait_for_records(caplog, access_logger, 2)
    finally:
        logger.removeFilter(redact)
    lines = [caplog.handler.format(record) for record in records]
    assert len(lines) == 2
    assert all(SECRET not in line for line in lines)
    assert "/routee/delivery/***" in lines[0]
    assert "/routee?token=***&x=1" in lines[1]
    for record in records:
        assert SECRET not in json.dumps({k: str(v) for k, v in vars(record).items()})


async def wait_for_records(
    caplog: pytest.LogCaptureFixture, logger: str, count: int
) -> list[logging.LogRecord]:
    """The first ``count`` records of ``logger`` (access logs are written after the answer)."""

    async def wait() -> list[logging.LogRecord]:
        while True:
            records = [r for r in caplog.records if r.name == logger]
            if len(records) >= count:
                return records
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(wait(), 10)


def test_the_redact_filter_on_the_record_shapes_of_uvicorn_and_aiohttp() -> None:
    redact = RedactTokenFilter(paths=["/hooks/{token}/delivery"], params=["token", "key"])
    # uvicorn.access: '%s - "%s %s HTTP/%s" %d' with the path and query as an argument.
    uvicorn_record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/hooks/{SECRET}/delivery?key={SECRET}", "1.1", 200),
        None,
    )
    # aiohttp.access: the line is formatted before logging; the parts travel as extras.
    aiohttp_record = logging.LogRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        1,
        f'127.0.0.1 [03/Dec/2026:15:00:00 +0000] "POST /x?token={SECRET} HTTP/1.1" 200 11 "-"',
        (),
        None,
    )
    aiohttp_record.first_request_line = f"POST /x?token={SECRET} HTTP/1.1"
    for record in (uvicorn_record, aiohttp_record):
        assert redact.filter(record) is True
        assert SECRET not in record.getMessage()
        assert SECRET not in str(vars(record))
    assert "/hooks/***/delivery?key=***" in uvicorn_record.getMessage()
    assert aiohttp_record.first_request_line == "POST /x?token=*** HTTP/1.1"
    assert redact.redact("/hooks/a/b/delivery") == "/hooks/a/b/delivery"  # one segment only
    with pytest.raises(ValueError, match="token"):
        RedactTokenFilter(paths=["/no/placeholder"])


# -- Content-Type: 415 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("application/vnd.routee.callback+json", 200),
        (None, 200),  # accepted: Routee sends JSON, and a proxy may drop the header
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/jsonp", 415),
        ("text/json", 415),
    ],
)
async def test_a_non_json_content_type_is_answered_415(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
    content_type: str | None,
    status: int,
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery) as base:
        answer = await post(
            http, f"{base}/routee/delivery", delivery_payload, content_type=content_type
        )
    assert answer[0] == status
    if status == 415:
        assert answer[1] == {"ok": False, "error": "unsupported_media_type"}
    assert len(recorder.deliveries) == (1 if status == 200 else 0)


def test_is_json_content_type() -> None:
    assert is_json_content_type(None)
    assert is_json_content_type(" ")
    assert is_json_content_type("application/problem+json")
    assert not is_json_content_type("application/octet-stream")
    assert not is_json_content_type("json")


# -- a slow body: 408 --------------------------------------------------------------------------


async def test_a_body_that_stalls_is_answered_408(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(on_delivery=recorder.on_delivery, body_timeout=0.3) as base:
        address = urlsplit(base)
        assert address.hostname is not None
        assert address.port is not None
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            writer.write(
                b"POST /routee/delivery HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: 200\r\n"
                b"\r\n"
                b'{"trackingId": '
            )
            await writer.drain()
            # Then nothing: the server must answer on its own, well within this bound.
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            rest = await asyncio.wait_for(reader.read(1000), 10)
        finally:
            writer.close()
        # The server still serves a normal callback afterwards.
        assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
    assert head.split(b"\r\n")[0] in (b"HTTP/1.1 408 Request Timeout", b"HTTP/1.1 408 ")
    assert json.loads(rest) == {"ok": False, "error": "request_timeout"}
    assert len(recorder.deliveries) == 1


def test_the_body_timeout_must_be_positive() -> None:
    from routee_viber_async.integrations.aiohttp import webhook_routes

    with pytest.raises(ValueError, match="body_timeout"):
        webhook_routes(on_delivery=Recorder().on_delivery, body_timeout=0)


# -- verify_with: a forged final status is dropped and does not take the dedupe key ------------


BASE = "http://routee.test"


@pytest.fixture
async def verifier(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RouteeViberClient]:
    install_compat(monkeypatch)
    async with RouteeViberClient(
        credentials=StaticToken("api-token"), base_url=BASE, retry=RetryPolicy.no_wait()
    ) as client:
        yield client


def tracking(status: str) -> dict[str, Any]:
    return {"trackingId": TRACKING_ID, "status": {"status": status, "date": "2026-05-20T05:45Z"}}


async def test_a_forged_final_status_is_answered_200_unhandled_and_the_genuine_one_goes_through(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    verifier: RouteeViberClient,
    delivery_payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = {**delivery_payload, "status": {"name": "SENT"}}
    tracking_url = f"{BASE}/viber/tracking/{TRACKING_ID}"
    with aioresponses(passthrough=["http://127.0.0.1"]) as api:
        # While the message is still SENT, an attacker posts DELIVERED; then Routee delivers.
        api.get(tracking_url, payload=tracking("SENT"))
        api.get(tracking_url, payload=tracking("DELIVERED"))
        async with serve_webhooks(
            on_delivery=recorder.on_delivery, deduplicator=Deduplicator(), verify_with=verifier
        ) as base:
            url = f"{base}/routee/delivery"
            non_final = await post(http, url, sent)  # not final: not verified
            forged = await post(http, url, delivery_payload)
            genuine = await post(http, url, delivery_payload)
            repeat = await post(http, url, delivery_payload)  # a duplicate: no tracking GET
        gets = [key for key in api.requests if key[0] == "GET"]
        [(_, called)] = gets
        assert len(api.requests[gets[0]]) == 2
        assert str(called) == tracking_url
    assert non_final == forged == genuine == (200, {"ok": True})
    assert repeat == (200, {"ok": True, "duplicate": True})
    assert [c.status.name for c in recorder.deliveries] == ["SENT", "DELIVERED"]
    assert any("forged" in message for message in warnings_of(caplog))


async def test_an_unknown_tracking_id_is_taken_for_forged(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    verifier: RouteeViberClient,
    delivery_payload: dict[str, Any],
) -> None:
    tracking_url = f"{BASE}/viber/tracking/{TRACKING_ID}"
    with aioresponses(passthrough=["http://127.0.0.1"]) as api:
        api.get(tracking_url, status=404, payload={"code": "404000000", "developerMessage": "?"})
        async with serve_webhooks(on_delivery=recorder.on_delivery, verify_with=verifier) as base:
            answer = await post(http, f"{base}/routee/delivery", delivery_payload)
    assert answer == (200, {"ok": True})
    assert recorder.deliveries == []


async def test_tracking_unavailable_is_answered_503_and_the_retry_is_handled(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    verifier: RouteeViberClient,
    delivery_payload: dict[str, Any],
) -> None:
    tracking_url = f"{BASE}/viber/tracking/{TRACKING_ID}"
    with aioresponses(passthrough=["http://127.0.0.1"]) as api:
        async with serve_webhooks(
            on_delivery=recorder.on_delivery, deduplicator=Deduplicator(), verify_with=verifier
        ) as base:
            url = f"{base}/routee/delivery"
            api.get(tracking_url, status=500, body="busy", repeat=True)
            unavailable = await post(http, url, delivery_payload)
            api.clear()
            api.get(tracking_url, payload=tracking("DELIVERED"))
            retried = await post(http, url, delivery_payload)
    assert unavailable == (503, {"ok": False, "error": "verification_unavailable"})
    assert retried == (200, {"ok": True})  # the 503 did not take the dedupe key
    assert len(recorder.deliveries) == 1


async def test_a_seen_record_confirms_a_delivered_callback(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    verifier: RouteeViberClient,
    delivery_payload: dict[str, Any],
) -> None:
    with aioresponses(passthrough=["http://127.0.0.1"]) as api:
        api.get(f"{BASE}/viber/tracking/{TRACKING_ID}", payload=tracking("SEEN"))
        async with serve_webhooks(on_delivery=recorder.on_delivery, verify_with=verifier) as base:
            answer = await post(http, f"{base}/routee/delivery", delivery_payload)
    assert answer == (200, {"ok": True})
    assert len(recorder.deliveries) == 1


# -- allow_from: 403 from elsewhere ------------------------------------------------------------


async def test_allow_from_addresses_and_networks(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery, allow_from=["127.0.0.0/8"], delivery_path="/a"
    ) as base:
        allowed = await post(http, f"{base}/a", delivery_payload)
    async with serve_webhooks(
        on_delivery=recorder.on_delivery, allow_from=["10.0.0.0/8", "::2"], delivery_path="/b"
    ) as base:
        refused = await post(http, f"{base}/b", delivery_payload)
        spoofed = await post(
            http, f"{base}/b", delivery_payload, headers={"X-Forwarded-For": "10.1.2.3"}
        )
    assert allowed == (200, {"ok": True})
    assert refused == spoofed == (403, {"ok": False, "error": "forbidden"})
    assert len(recorder.deliveries) == 1


async def test_allow_from_a_hostname_resolved_by_the_given_resolver(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    asked: list[str] = []

    async def resolver(host: str) -> list[str]:
        asked.append(host)
        return ["192.0.2.10", "127.0.0.1"]

    async with serve_webhooks(
        on_delivery=recorder.on_delivery, allow_from=[ROUTEE_CALLBACK_HOST], resolver=resolver
    ) as base:
        for _ in range(3):
            assert (await post(http, f"{base}/routee/delivery", delivery_payload))[0] == 200
    assert asked == [ROUTEE_CALLBACK_HOST]  # resolved once, not on every request
    assert ROUTEE_CALLBACK_HOST == "callbacksallow.routee.net"


async def test_trusted_proxies_and_x_forwarded_for(
    serve_webhooks: ServeWebhooks,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    delivery_payload: dict[str, Any],
) -> None:
    async with serve_webhooks(
        on_delivery=recorder.on_delivery,
        allow_from=["203.0.113.9"],
        trusted_proxies=["127.0.0.1", "198.51.100.0/24"],
    ) as base:
        url = f"{base}/routee/delivery"

        async def from_(forwarded: str | None) -> int:
            headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
            return (await post(http, url, delivery_payload, headers=headers))[0]

        statuses = {
            "client behind two trusted proxies": await from_("203.0.113.9, 198.51.100.7"),
            "client, then a forged left-most hop": await from_("10.9.9.9, 203.0.113.9"),
            "right-most untrusted is not allowed": await from_("203.0.113.9, 10.9.9.9"),
            "no header: the proxy itself": await from_(None),
            "garbage": await from_("not-an-address"),
        }
    assert statuses == {
        "client behind two trusted proxies": 200,
        "client, then a forged left-most hop": 200,
        "right-most untrusted is not allowed": 403,
        "no header: the proxy itself": 403,
        "garbage": 403,
    }
    assert len(recorder.deliveries) == 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_hostnames_are_re_resolved_lazily_after_refresh_every() -> None:
    answers = [["192.0.2.1"], ["192.0.2.2"], OSError("no DNS"), ["192.0.2.3"]]
    asked = 0

    async def resolver(host: str) -> list[str]:
        nonlocal asked
        answer = answers[asked]
        asked += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    allowlist = SourceAllowlist(["callbacks.example"], resolver=resolver, clock=clock)
    assert await allowlist.allows("192.0.2.1")
    assert not await allowlist.allows("192.0.2.2")
    assert asked == 1
    clock.now += 599
    assert await allowlist.allows("192.0.2.1")
    assert asked == 1  # still fresh
    clock.now += 1  # 10 minutes: resolved again on the next request
    assert await allowlist.allows("192.0.2.2")
    assert not await allowlist.allows("192.0.2.1")
    assert asked == 2
    clock.now += 600  # a DNS failure keeps the last good addresses, and retries sooner
    assert await allowlist.allows("192.0.2.2")
    assert asked == 3
    clock.now += 30
    assert await allowlist.allows("192.0.2.3")
    assert asked == 4


async def test_concurrent_requests_resolve_once() -> None:
    release = asyncio.Event()
    asked = 0

    async def resolver(host: str) -> list[str]:
        nonlocal asked
        asked += 1
        await release.wait()
        return ["127.0.0.1"]

    allowlist = SourceAllowlist(["h.example"], resolver=resolver)
    checks = [asyncio.create_task(allowlist.allows("127.0.0.1")) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*checks) == [True] * 5
    assert asked == 1


def test_allowlist_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="allow_from"):
        SourceAllowlist([])
    with pytest.raises(ValueError, match="trusted_proxies"):
        SourceAllowlist(["127.0.0.1"], trusted_proxies=["proxy.example"])
    allowlist = SourceAllowlist(["::ffff:127.0.0.1"])
    assert str(allowlist.client_address("::ffff:127.0.0.1", None)) == "127.0.0.1"


async def test_the_default_resolver_is_the_loop_s_getaddrinfo() -> None:
    from routee_viber_async.webhooks._sources import resolve_with_loop

    # A numeric host: getaddrinfo answers it without asking any DNS server.
    assert set(await resolve_with_loop("127.0.0.1")) == {"127.0.0.1"}
