"""The transport's plain behaviour: requests, answers, status mapping, session and views."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import aiohttp
import pytest
from transport_helpers import FakeRoutee, MakeTransport, reply, wait_until

from routee_viber_async._auth import StaticToken
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import (
    APIStatusError,
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RouteeError,
    ServerError,
    TransportError,
    UnprocessableError,
    ValidationError,
    outcome_unknown,
    routee_status_error,
)
from routee_viber_async._transport import DEFAULT_USER_AGENT, Transport

SEED_400 = {
    "code": "400019029",
    "developerMessage": "Parameter document_name must not look like a file name or extension.",
    "validationIssues": [
        {"code": "PARAM_CONTAINS_FILE_EXTENSION", "message": "document_name looks like a file"},
        {"code": "PARAM_VALUE_TOO_LONG", "message": "code is longer than 25 characters"},
    ],
}


async def test_get_returns_decoded_json_with_auth_and_headers(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    data, attempts = await transport.request("GET", "/viber/tracking/abc", params={"a": "1"})
    assert data == {"ok": True, "n": 1}
    assert attempts == 1
    hit = routee.hits[0]
    assert (hit.method, hit.path, hit.query) == ("GET", "/viber/tracking/abc", {"a": "1"})
    assert hit.token == routee.issued[0]
    assert routee.auth_hits == 1


async def test_post_sends_json_body_as_application_json(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    await transport.request("POST", "/viber/transactional/messages", body=b'{"to":"+3069"}')
    hit = routee.hits[0]
    assert hit.body == b'{"to":"+3069"}'
    assert hit.content_type == "application/json"


@pytest.mark.parametrize("own_session", [True, False])
async def test_user_agent_and_accept(
    routee: FakeRoutee, make_transport: MakeTransport, own_session: bool
) -> None:
    """Our session carries the static headers as its defaults, a caller's session does not:
    every request has them either way, and a caller's session keeps its own defaults."""
    seen: list[dict[str, str]] = []

    async def capture(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        seen.append(dict(request.headers))
        return aiohttp.web.json_response({})

    routee.script(capture, capture)
    async with aiohttp.ClientSession(headers={"X-Caller": "kept"}) as session:
        transport = make_transport() if own_session else make_transport(session=session)
        await transport.request("GET", "/x")
        await transport.request("POST", "/y", body=b"{}")
    for headers in seen:
        assert headers["User-Agent"] == DEFAULT_USER_AGENT
        assert headers["Accept"] == "application/json"
        assert headers["Authorization"].startswith("Bearer ")
        assert ("X-Caller" in headers) is not own_session
    assert seen[1]["Content-Type"] == "application/json"


async def test_empty_answer_is_none(routee: FakeRoutee, make_transport: MakeTransport) -> None:
    routee.script(reply(204), reply(200))
    transport = make_transport()
    assert (await transport.request("DELETE", "/t/1")).data is None
    assert (await transport.request("DELETE", "/t/2")).data is None


async def test_token_is_reused_across_calls(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    for _ in range(5):
        await transport.request("GET", "/x")
    assert routee.auth_hits == 1
    assert {hit.token for hit in routee.hits} == {routee.issued[0]}


async def test_seed_400019029_body_is_parsed(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(400, SEED_400))
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=4))
    with pytest.raises(ValidationError) as caught:
        await transport.request(
            "POST", "/viber/transactional/messages", params={"q": "secret-q"}, body=b"{}"
        )
    error = caught.value
    assert error.code == "400019029"
    assert error.developer_message == SEED_400["developerMessage"]
    assert error.codes == ["PARAM_CONTAINS_FILE_EXTENSION", "PARAM_VALUE_TOO_LONG"]
    assert error.issues[1].message == "code is longer than 25 characters"
    assert error.status == 400
    assert error.body == SEED_400
    assert (error.method, error.path) == ("POST", "/viber/transactional/messages")
    assert error.attempts == 1
    assert "secret-q" not in str(error)
    assert routee.api_hits == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"developerMessage": "templateId is required"}, "templateId is required"),
        ({"message": "bad json"}, "bad json"),
        ({"code": "400001"}, "the server refused the request"),
    ],
)
async def test_other_400_bodies_become_one_bad_request_issue(
    routee: FakeRoutee, make_transport: MakeTransport, body: dict[str, str], message: str
) -> None:
    routee.script(reply(400, body))
    with pytest.raises(ValidationError) as caught:
        await make_transport().request("GET", "/x")
    assert caught.value.issues == [("BAD_REQUEST", message)]
    assert caught.value.code == body.get("code")


async def test_non_json_error_body_is_kept_as_text(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(400, text="<html>Bad Request</html>"), reply(502, text="<h1>502</h1>"))
    transport = make_transport(retry=RetryPolicy.disabled())
    with pytest.raises(ValidationError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.body == "<html>Bad Request</html>"
    assert caught.value.codes == ["BAD_REQUEST"]
    with pytest.raises(ServerError) as server_error:
        await transport.request("GET", "/x")
    assert server_error.value.body == "<h1>502</h1>"
    assert server_error.value.status == 502


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, APIStatusError),
        (422, UnprocessableError),
        (429, RateLimitError),
        (500, ServerError),
        (501, ServerError),
        (302, APIStatusError),
    ],
)
async def test_status_mapping(
    routee: FakeRoutee, make_transport: MakeTransport, status: int, error_type: type[Exception]
) -> None:
    headers = {"Location": "/elsewhere"} if status == 302 else None
    routee.script(reply(status, {"code": "E1", "access_token": "leak"}, headers=headers))
    with pytest.raises(error_type) as caught:
        await make_transport(retry=RetryPolicy.disabled()).request("GET", "/r/1?x=1")
    error = caught.value
    assert type(error) is error_type
    assert isinstance(error, APIStatusError)
    assert error.status == status
    assert error.path == "/r/1"
    assert error.body == {"code": "E1", "access_token": "***"}
    assert "(E1)" in str(error)
    assert routee.api_hits == 1  # redirects are not followed


async def test_rate_limit_error_carries_retry_after(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(429, {}, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as caught:
        await make_transport(retry=RetryPolicy.disabled()).request("GET", "/x")
    assert caught.value.retry_after == 7.0
    assert caught.value.headers["Retry-After"] == "7"


async def test_malformed_json_in_a_2xx_is_a_typed_error_and_not_retried(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(reply(200, text="{not json"))
    with pytest.raises(InvalidResponseError) as caught:
        await make_transport().request("POST", "/viber/transactional/messages", body=b"{}")
    assert caught.value.status == 200
    assert caught.value.body == "{not json"
    assert caught.value.attempts == 1
    assert outcome_unknown(caught.value)  # it reached Routee: never a certain failure
    assert routee.api_hits == 1


async def test_401_with_a_static_token_fails_without_replay(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(token_provider=StaticToken("revoked-static-TOKEN"))
    with pytest.raises(AuthenticationError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.status == 401
    assert caught.value.attempts == 1
    assert routee.api_hits == 1
    assert routee.auth_hits == 0


# -- concurrency ------------------------------------------------------------------------------


async def test_semaphore_bounds_in_flight_requests(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.hold = 0.01
    transport = make_transport(max_concurrency=4)
    await asyncio.gather(*(transport.request("GET", f"/x/{i}") for i in range(30)))
    assert routee.api_hits == 30
    assert routee.max_in_flight == 4


async def test_views_share_pool_token_and_semaphore(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.hold = 0.01
    transport = make_transport(max_concurrency=3)
    view = transport.with_options(retry=RetryPolicy.disabled(), timeout=5)
    assert view.retry == RetryPolicy.disabled()
    assert view.timeout.total == 5
    assert view.max_concurrency == 3
    calls = [t.request("GET", "/x") for t in (transport, view) * 10]
    await asyncio.gather(*calls)
    assert routee.max_in_flight == 3
    assert routee.auth_hits == 1
    await view.close()
    assert not view.closed
    assert not transport.closed
    await transport.request("GET", "/still-open")
    await transport.close()
    assert view.closed


async def test_view_uses_its_own_retry_policy(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=3))
    view = transport.with_options(retry=RetryPolicy.disabled())
    routee.script(reply(503), reply(503), reply(503), reply(503))
    with pytest.raises(ServerError) as caught:
        await view.request("GET", "/x")
    assert caught.value.attempts == 1
    with pytest.raises(ServerError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 3


# -- session lifecycle ------------------------------------------------------------------------


async def test_close_is_idempotent_and_later_calls_fail(make_transport: MakeTransport) -> None:
    transport = make_transport()
    await transport.request("GET", "/x")
    await transport.close()
    await transport.close()
    assert transport.closed
    with pytest.raises(RuntimeError, match="closed"):
        await transport.request("GET", "/x")


async def test_close_before_any_request(make_transport: MakeTransport) -> None:
    transport = make_transport()
    await transport.close()
    assert transport.closed


async def test_session_is_created_lazily_in_the_loop(make_transport: MakeTransport) -> None:
    transport = make_transport()
    assert transport.session is None
    await transport.request("GET", "/x")
    session = transport.session
    assert session is not None
    await transport.close()
    assert session.closed


async def test_caller_owned_session_is_never_closed(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    async with aiohttp.ClientSession() as session:
        transport = make_transport(session=session)
        await transport.request("GET", "/x")
        await transport.close()
        assert transport.closed
        assert not session.closed
        async with session.get(routee.base_url + "/after") as resp:
            assert resp.status == 401  # the session still works
    assert session.closed


async def test_async_context_manager(make_transport: MakeTransport) -> None:
    async with make_transport() as transport:
        await transport.request("GET", "/x")
    assert transport.closed


async def test_close_ends_calls_in_flight_cleanly(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=5))
    await transport.request("GET", "/warm-up")
    routee.script(*[routee.hang] * 5)
    calls = [asyncio.create_task(transport.request("GET", f"/h/{i}")) for i in range(5)]
    await wait_until(lambda: routee.in_flight == 5)
    await transport.close()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 1.0)
    for result in results:
        assert isinstance(result, TransportError)
        assert "closed" in str(result)
        assert result.attempts == 1
    assert routee.api_hits == 6  # nothing was retried after close


async def test_close_ends_calls_waiting_for_a_slot(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(max_concurrency=2, retry=RetryPolicy.no_wait(max_attempts=5))
    await transport.request("GET", "/warm-up")
    routee.script(*[routee.hang] * 5)
    calls = [asyncio.create_task(transport.request("GET", f"/h/{i}")) for i in range(5)]
    await wait_until(lambda: routee.in_flight == 2)
    await transport.close()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 1.0)
    assert all(isinstance(result, TransportError) for result in results)
    assert sorted(r.attempts for r in results) == [0, 0, 0, 1, 1]  # type: ignore[attr-defined]
    assert routee.api_hits == 3


async def test_close_wakes_a_call_sleeping_before_its_retry(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(retry=RetryPolicy(initial_backoff=30, max_backoff=30))
    routee.script(reply(503, headers={"Retry-After": "30"}))
    call = asyncio.create_task(transport.request("GET", "/x"))
    await wait_until(lambda: routee.api_hits == 1)
    await asyncio.sleep(0.01)
    await transport.close()
    with pytest.raises(TransportError, match="closed") as caught:
        await asyncio.wait_for(call, 1.0)
    assert caught.value.request_sent is False
    assert caught.value.attempts == 1
    assert routee.api_hits == 1


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Transport(token_provider=StaticToken("t"), base_url="http://x", auth_url="http://y",
                  make_status_error=routee_status_error, max_concurrency=0)  # fmt: skip


async def test_large_answers_arrive_whole_over_one_keep_alive_connection(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    big = {"items": ["x" * 1000] * 300}  # about 300 KiB of JSON, several socket reads
    routee.script(reply(200, big), reply(200, big))
    transport = make_transport()
    for _ in range(2):
        reply_ = await transport.request("POST", "/viber/transactional/messages", body=b"{}")
        assert reply_.data == big
    assert (await transport.request("GET", "/viber/tracking/x")).data == {"ok": True, "n": 3}


async def test_the_transport_words_error_answers_with_the_factory_it_was_given(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    """The transport knows HTTP only: what a non-2xx answer means is the factory's business."""
    seen: list[tuple[int, bytes, str, str]] = []

    class Refused(RouteeError):
        pass

    def make_status_error(
        status: int, raw: bytes, headers: Mapping[str, str], method: str, path: str
    ) -> RouteeError:
        seen.append((status, raw, method, path))
        return Refused(f"{method} {path}: {status}")

    routee.script(reply(404, {"code": "404000000"}))
    transport = make_transport(make_status_error=make_status_error)
    with pytest.raises(Refused) as caught:
        await transport.request("GET", "/t/1?x=1")
    assert caught.value.attempts == 1
    assert [(s, json.loads(raw), m, p) for s, raw, m, p in seen] == [
        (404, {"code": "404000000"}, "GET", "/t/1?x=1")
    ]
