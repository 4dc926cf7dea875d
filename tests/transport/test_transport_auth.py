"""Tokens: the client-credentials grant, refresh ahead, single flight, 401 storms, the 403 rule."""

from __future__ import annotations

import asyncio
import base64
import math

import aiohttp
import pytest
from transport_helpers import APP_ID, APP_SECRET, FakeRoutee, MakeTransport, reply, wait_until

from routee_viber_async._auth import (
    AccessToken,
    ClientCredentials,
    StaticToken,
    TokenManager,
    TokenProvider,
    refresh_margin,
)
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServerError,
    TransportError,
)

# -- providers --------------------------------------------------------------------------------


async def test_client_credentials_grant(routee: FakeRoutee) -> None:
    seen: dict[str, object] = {}

    async def capture(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        seen["authorization"] = request.headers["Authorization"]
        seen["form"] = dict(await request.post())
        return aiohttp.web.json_response(
            {"access_token": "abc-TOKEN", "expires_in": 3600, "token_type": "bearer"}
        )

    routee.auth_script.append(capture)
    async with aiohttp.ClientSession() as http:
        token = await ClientCredentials(APP_ID, APP_SECRET).fetch_token(http, routee.auth_url)
    expected = base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
    assert seen == {
        "authorization": f"Basic {expected}",
        "form": {"grant_type": "client_credentials"},
    }
    assert token.value == "abc-TOKEN"
    assert token.token_type == "bearer"
    assert token.expires_at is not None
    assert token.remaining() == pytest.approx(3600, abs=5)
    assert 0 <= token.age() < 5


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_refused_credentials_are_an_authentication_error_without_secret(
    routee: FakeRoutee, status: int
) -> None:
    routee.auth_script.append(reply(status, {"error": "invalid_client"}))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AuthenticationError) as caught:
            await ClientCredentials(APP_ID, APP_SECRET).fetch_token(http, routee.auth_url)
    error = caught.value
    assert error.status == status
    assert "invalid_client" in str(error)
    basic = base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
    for text in (str(error), repr(error), repr(error.body), repr(error.headers)):
        assert APP_SECRET not in text
        assert basic not in text


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (reply(200, {"token_type": "bearer"}), AuthenticationError),
        (reply(200, text="not json"), AuthenticationError),
        (reply(503, {"error": "down"}), ServerError),
    ],
)
async def test_unusable_auth_answers(
    routee: FakeRoutee, answer: object, error_type: type[Exception]
) -> None:
    routee.auth_script.append(answer)  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as http:
        with pytest.raises(error_type):
            await ClientCredentials(APP_ID, APP_SECRET).fetch_token(http, routee.auth_url)


async def test_unreachable_auth_server_is_a_transport_error(closed_port: int) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TransportError) as caught:
            await ClientCredentials(APP_ID, APP_SECRET).fetch_token(
                http, f"http://127.0.0.1:{closed_port}/oauth/token"
            )
    assert caught.value.request_sent is False


async def test_static_token_never_expires() -> None:
    async with aiohttp.ClientSession() as http:
        token = await StaticToken("static-VALUE").fetch_token(http, "unused")
    assert token.value == "static-VALUE"
    assert token.expires_at is None
    assert token.remaining() == math.inf
    assert not token.is_expired()


def test_reprs_hide_secrets() -> None:
    credentials = ClientCredentials(APP_ID, APP_SECRET)
    assert APP_SECRET not in repr(credentials)
    assert "***" in repr(credentials)
    assert APP_ID in repr(credentials)
    assert "VALUE" not in repr(StaticToken("static-VALUE"))
    token = AccessToken("tok-VALUE", expires_at=5.0)
    assert "VALUE" not in repr(token)
    assert "VALUE" not in str(token)
    assert isinstance(credentials, TokenProvider)
    assert isinstance(StaticToken("x"), TokenProvider)


def test_refresh_margin() -> None:
    assert refresh_margin(3600) == 360  # 10% of an hour
    assert refresh_margin(120) == 30  # at least 30 s
    assert refresh_margin(40) == 20  # never more than half the lifetime
    assert refresh_margin(0.2) == pytest.approx(0.1)


# -- bad credentials through the transport ----------------------------------------------------


async def test_bad_credentials_fail_fast_and_never_hit_the_api(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(
        token_provider=ClientCredentials(APP_ID, "wrong-SECRET"),
        retry=RetryPolicy.no_wait(max_attempts=5),
    )
    with pytest.raises(AuthenticationError) as caught:
        await transport.request("POST", "/viber/transactional/messages", body=b"{}")
    assert routee.api_hits == 0
    assert routee.auth_hits == 1  # not retried
    assert caught.value.attempts == 0
    assert "wrong-SECRET" not in str(caught.value)
    assert "wrong-SECRET" not in repr(caught.value.body)


async def test_concurrent_callers_share_one_failed_fetch(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.auth_gate = asyncio.Event()
    transport = make_transport(token_provider=ClientCredentials(APP_ID, "wrong-SECRET"))
    calls = [asyncio.create_task(transport.request("GET", "/x")) for _ in range(20)]
    await wait_until(lambda: routee.auth_hits == 1)
    routee.auth_gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert routee.auth_hits == 1
    assert routee.api_hits == 0


async def test_token_fetch_holds_no_api_slot(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.auth_gate = asyncio.Event()
    transport = make_transport(max_concurrency=1)
    call = asyncio.create_task(transport.request("GET", "/x"))
    await wait_until(lambda: routee.auth_hits == 1)
    assert not transport.semaphore.locked()  # fetching, yet the slot is free
    routee.auth_gate.set()
    assert (await call).data == {"ok": True, "n": 1}


async def test_concurrent_first_calls_fetch_one_token(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    await asyncio.gather(*(transport.request("GET", "/x") for _ in range(50)))
    assert routee.auth_hits == 1
    assert routee.api_hits == 50


# -- 401 ---------------------------------------------------------------------------------------


async def test_401_storm_causes_exactly_one_refresh(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.hold = 0.005
    transport = make_transport()
    await transport.request("GET", "/warm-up")
    stale = routee.issued[0]
    routee.revoke_all()
    results = await asyncio.gather(*(transport.request("GET", f"/x/{i}") for i in range(60)))
    assert len(results) == 60
    assert routee.auth_hits == 2  # the first token, and ONE refresh
    refused = [hit for hit in routee.hits[1:] if hit.token == stale]
    replayed = [hit for hit in routee.hits[1:] if hit.token == routee.issued[1]]
    assert len(refused) == 60
    assert len(replayed) == 60


async def test_401_refreshes_once_and_replays_once_then_fails(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=5))
    await transport.request("GET", "/warm-up")
    routee.revoke_all()
    routee.script(reply(401, {"error": "invalid_token"}))  # the replay is refused as well
    with pytest.raises(AuthenticationError) as caught:
        await transport.request("POST", "/viber/transactional/messages", body=b"{}")
    assert caught.value.status == 401
    assert caught.value.attempts == 2
    assert routee.auth_hits == 2
    assert routee.api_hits == 3


async def test_401_replay_then_retry_on_503(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    await transport.request("GET", "/warm-up")
    routee.revoke_all()
    routee.script(reply(503))
    data, attempts = await transport.request("GET", "/x")
    assert data == {"ok": True, "n": 4}
    assert attempts == 3  # 401, replay -> 503, retry -> 200
    assert routee.auth_hits == 2


# -- 403 ---------------------------------------------------------------------------------------


async def test_403_on_an_old_token_refreshes_and_replays(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(forbidden_refresh_after=0.02)
    await transport.request("GET", "/warm-up")
    routee.forbid_tokens.add(routee.issued[0])
    await asyncio.sleep(0.03)
    data, attempts = await transport.request("POST", "/m", body=b"{}")
    assert data["ok"] is True
    assert attempts == 2
    assert routee.auth_hits == 2
    assert routee.hits[-1].token == routee.issued[1]


async def test_403_on_a_fresh_token_is_permission_denied_at_once(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(forbidden_refresh_after=60)
    await transport.request("GET", "/warm-up")
    routee.forbid_tokens.add(routee.issued[0])
    with pytest.raises(PermissionDeniedError) as caught:
        await transport.request("POST", "/m", body=b"{}")
    assert caught.value.attempts == 1
    assert routee.auth_hits == 1
    assert routee.api_hits == 2


async def test_403_after_the_replay_is_permission_denied(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(forbidden_refresh_after=0)
    await transport.request("GET", "/warm-up")
    routee.script(reply(403, {"code": "403"}), reply(403, {"code": "403"}))
    with pytest.raises(PermissionDeniedError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.attempts == 2
    assert routee.auth_hits == 2


# -- refresh ahead -----------------------------------------------------------------------------


async def test_token_is_refreshed_ahead_of_expiry(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.expires_in = 0.2  # refreshed once less than 0.1 s remain
    transport = make_transport()
    await transport.request("GET", "/a")
    await asyncio.sleep(0.12)  # inside the margin, before expiry
    await transport.request("GET", "/b")
    assert routee.auth_hits == 2
    assert [hit.token for hit in routee.hits] == routee.issued
    assert all(hit.token not in routee.revoked for hit in routee.hits)


async def test_refresh_ahead_failure_keeps_the_valid_token(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.expires_in = 0.4
    transport = make_transport()
    await transport.request("GET", "/a")
    await asyncio.sleep(0.22)  # inside the margin (0.2 s), still valid
    routee.auth_script.append(reply(503))
    await transport.request("GET", "/b")  # the refresh fails; the old token still works
    assert routee.auth_hits == 2
    assert routee.hits[-1].token == routee.issued[0]


async def test_expired_token_is_not_used(routee: FakeRoutee) -> None:
    manager = TokenManager(ClientCredentials(APP_ID, APP_SECRET), routee.auth_url)
    routee.expires_in = 0.05
    async with aiohttp.ClientSession() as http:
        first = await manager.get(http)
        await asyncio.sleep(0.06)
        routee.auth_script.append(reply(503))
        with pytest.raises(ServerError):
            await manager.get(http)  # no valid fallback: the error surfaces
        second = await manager.get(http)
    assert first is not second
    assert manager.fetches == 3


async def test_invalidate_compares_the_stale_token(routee: FakeRoutee) -> None:
    manager = TokenManager(ClientCredentials(APP_ID, APP_SECRET), routee.auth_url)
    async with aiohttp.ClientSession() as http:
        first = await manager.get(http)
        second = await manager.invalidate(first, http)
        again = await manager.invalidate(first, http)  # a late 401 with the old token
        assert second is again
        assert second is not first
        third = await manager.invalidate(second, http)
    assert third.value not in (first.value, second.value)
    assert manager.fetches == 3


async def test_manager_rejects_a_provider_returning_garbage() -> None:
    class Broken:
        async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
            return "nope"  # type: ignore[return-value]

    manager = TokenManager(Broken(), "http://unused")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TypeError, match="AccessToken"):
            await manager.get(http)


class _GatedProvider:
    """Hands out ``token-1``, ``token-2``, ... each once its gate opens."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.calls = 0

    async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
        self.calls += 1
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return AccessToken.from_expires_in(f"token-{self.calls}", 3600)


async def test_every_caller_waiting_for_a_fetch_resumes_in_the_same_turn_of_the_loop() -> None:
    provider = _GatedProvider()
    manager = TokenManager(provider, "http://unused")
    async with aiohttp.ClientSession() as http:
        callers = [asyncio.create_task(manager.get(http)) for _ in range(300)]
        await wait_until(lambda: provider.calls == 1)
        provider.gates[0].set()
        # A lock would let its waiters go one per turn of the event loop (300 turns); one shared
        # outcome lets them all go at once.
        for _ in range(4):
            await asyncio.sleep(0)
        assert all(caller.done() for caller in callers)
        assert {caller.result().value for caller in callers} == {"token-1"}
        assert provider.calls == 1
        assert manager.fetches == 1


async def test_a_cancelled_caller_leaves_the_fetch_running_for_the_others() -> None:
    """The fetch runs in a task of its own: the caller that started it may be cancelled, and
    the others get that same fetch's token, with no second fetch."""
    provider = _GatedProvider()
    manager = TokenManager(provider, "http://unused")
    async with aiohttp.ClientSession() as http:
        leader = asyncio.create_task(manager.get(http))
        await wait_until(lambda: provider.calls == 1)
        waiters = [asyncio.create_task(manager.get(http)) for _ in range(5)]
        await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert manager.fetching
        provider.gates[0].set()
        tokens = await asyncio.gather(*waiters)
        assert {token.value for token in tokens} == {"token-1"}
        assert provider.calls == 1
        assert manager.token is tokens[0]
        assert not manager.fetching


async def test_close_cancels_the_fetch_and_wakes_every_waiter_with_a_typed_error() -> None:
    provider = _GatedProvider()
    manager = TokenManager(provider, "http://unused")
    async with aiohttp.ClientSession() as http:
        waiters = [asyncio.create_task(manager.get(http)) for _ in range(5)]
        await wait_until(lambda: provider.calls == 1)
        manager.close()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(result, TransportError) for result in results), results
        assert all(result.request_sent is False for result in results)  # type: ignore[union-attr]
        assert not manager.fetching
        assert provider.calls == 1
