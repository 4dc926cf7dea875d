"""The client itself: from_env, with_options views, closing, caller-owned sessions, reprs."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from client_helpers import AUTH, BASE, TOKEN, all_calls, calls, only_call
from internals import transport_of

from routee_viber_async import (
    DEFAULT_AUTH_URL,
    DEFAULT_BASE_URL,
    AccessToken,
    ClientClosedError,
    ClientCredentials,
    ConfigurationError,
    RetryPolicy,
    RouteeError,
    RouteeViberClient,
    SendMessage,
    ServerError,
    StaticToken,
    outcome_unknown,
)

APP_ID = "app-id-4711"
APP_SECRET = "app-SECRET-value-42"
ISSUED = "issued-TOKEN-value-99"
ENV_BASE = "https://env-api.routee.test"
ENV_AUTH = "https://env-auth.routee.test/oauth/token"
ENV_VARS = (
    "ROUTEE_APPLICATION_ID",
    "ROUTEE_APPLICATION_SECRET",
    "ROUTEE_ACCESS_TOKEN",
    "ROUTEE_BASE_URL",
    "ROUTEE_AUTH_URL",
)
TRACKING = "/viber/tracking/abc"
RECORD = {"trackingId": "abc", "status": {"status": "QUEUED"}}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean Routee environment; set variables with ``env.setenv``."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def token_answer() -> dict[str, Any]:
    return {"access_token": ISSUED, "token_type": "bearer", "expires_in": 3600}


def basic(application_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{application_id}:{secret}".encode()).decode()


# -- from_env --------------------------------------------------------------------------------


async def test_from_env_with_application_credentials(
    env: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    env.setenv("ROUTEE_APPLICATION_ID", APP_ID)
    env.setenv("ROUTEE_APPLICATION_SECRET", APP_SECRET)
    env.setenv("ROUTEE_BASE_URL", ENV_BASE)
    env.setenv("ROUTEE_AUTH_URL", ENV_AUTH)
    mocked.post(ENV_AUTH, payload=token_answer())
    mocked.get(ENV_BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient.from_env() as client:
        await client.tracking.get("abc")
    [auth] = calls(mocked, "POST", ENV_AUTH)
    assert auth.kwargs["headers"]["Authorization"] == basic(APP_ID, APP_SECRET)
    assert auth.kwargs["data"] == {"grant_type": "client_credentials"}
    [api] = calls(mocked, "GET", ENV_BASE + TRACKING)
    assert api.kwargs["headers"]["Authorization"] == f"Bearer {ISSUED}"
    assert len(all_calls(mocked)) == 2


async def test_from_env_with_an_access_token(env: pytest.MonkeyPatch, mocked: aioresponses) -> None:
    env.setenv("ROUTEE_ACCESS_TOKEN", TOKEN)
    env.setenv("ROUTEE_BASE_URL", ENV_BASE + "/")  # a trailing slash is fine
    mocked.get(ENV_BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient.from_env() as client:
        await client.tracking.get("abc")
    call = only_call(mocked, "GET", ENV_BASE + TRACKING)  # no token request
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"


async def test_from_env_defaults_to_routees_urls(
    env: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    env.setenv("ROUTEE_APPLICATION_ID", APP_ID)
    env.setenv("ROUTEE_APPLICATION_SECRET", APP_SECRET)
    mocked.post(DEFAULT_AUTH_URL, payload=token_answer())
    mocked.get(DEFAULT_BASE_URL + TRACKING, payload=RECORD)
    async with RouteeViberClient.from_env() as client:
        await client.tracking.get("abc")
    assert len(calls(mocked, "POST", DEFAULT_AUTH_URL)) == 1
    assert len(calls(mocked, "GET", DEFAULT_BASE_URL + TRACKING)) == 1


async def test_from_env_options_win(env: pytest.MonkeyPatch, mocked: aioresponses) -> None:
    env.setenv("ROUTEE_APPLICATION_ID", APP_ID)
    env.setenv("ROUTEE_APPLICATION_SECRET", APP_SECRET)
    env.setenv("ROUTEE_BASE_URL", ENV_BASE)
    mocked.get(BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient.from_env(credentials=StaticToken(TOKEN), base_url=BASE) as client:
        await client.tracking.get("abc")
    call = only_call(mocked, "GET", BASE + TRACKING)
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"


async def test_from_env_credentials_option_needs_no_environment(env: pytest.MonkeyPatch) -> None:
    client = RouteeViberClient.from_env(credentials=StaticToken(TOKEN))
    await client.close()


@pytest.mark.parametrize(
    "present",
    [
        {},
        {"ROUTEE_APPLICATION_ID": APP_ID},
        {"ROUTEE_APPLICATION_SECRET": APP_SECRET},
        {"ROUTEE_BASE_URL": ENV_BASE, "ROUTEE_AUTH_URL": ENV_AUTH},
        {"ROUTEE_ACCESS_TOKEN": ""},
    ],
)
def test_from_env_without_credentials_is_a_configuration_error(
    env: pytest.MonkeyPatch, present: dict[str, str]
) -> None:
    for name, value in present.items():
        env.setenv(name, value)
    with pytest.raises(ConfigurationError, match="ROUTEE_ACCESS_TOKEN") as caught:
        RouteeViberClient.from_env()
    assert isinstance(caught.value, RouteeError)
    assert isinstance(caught.value, ValueError)  # what it was before, still true


# -- with_options ------------------------------------------------------------------------------


async def test_view_shares_the_token_and_the_pool(mocked: aioresponses) -> None:
    mocked.post(AUTH, payload=token_answer())  # registered once: a second fetch would fail
    mocked.get(BASE + TRACKING, payload=RECORD, repeat=True)
    async with RouteeViberClient(
        credentials=ClientCredentials(APP_ID, APP_SECRET), base_url=BASE, auth_url=AUTH
    ) as client:
        view = client.with_options(timeout=3.0)
        await view.tracking.get("abc")
        await client.tracking.get("abc")
        await view.tracking.get("abc")
        assert transport_of(view).session is transport_of(client).session
        assert view._transport.timeout.total == 3.0
        assert client._transport.timeout.total == 10.0
    assert len(calls(mocked, "POST", AUTH)) == 1
    tokens = {c.kwargs["headers"]["Authorization"] for c in calls(mocked, "GET", BASE + TRACKING)}
    assert tokens == {f"Bearer {ISSUED}"}


async def test_view_shares_the_semaphore(mocked: aioresponses) -> None:
    release = asyncio.Event()
    entered: list[str] = []

    def handler(name: str) -> Any:
        async def callback(url: object, **kwargs: Any) -> CallbackResult:
            entered.append(name)
            if name == "parent":
                await release.wait()
            return CallbackResult(payload={**RECORD, "trackingId": name})

        return callback

    mocked.get(BASE + "/viber/tracking/parent", callback=handler("parent"))
    mocked.get(BASE + "/viber/tracking/view", callback=handler("view"))
    async with RouteeViberClient(
        credentials=StaticToken(TOKEN), base_url=BASE, max_concurrency=1
    ) as client:
        view = client.with_options(retry=RetryPolicy.disabled())
        parent_call = asyncio.create_task(client.tracking.get("parent"))
        async with asyncio.timeout(2):
            while not entered:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        view_call = asyncio.create_task(view.tracking.get("view"))
        await asyncio.sleep(0.05)
        assert entered == ["parent"]  # the view waits for the parent's only slot
        release.set()
        assert (await view_call).tracking_id == "view"
        assert (await parent_call).tracking_id == "parent"
    assert entered == ["parent", "view"]


async def test_view_has_its_own_retry_policy(mocked: aioresponses) -> None:
    mocked.get(BASE + TRACKING, status=503, payload={"code": "503000000"})
    mocked.get(BASE + TRACKING, status=503, payload={"code": "503000000"})
    mocked.get(BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient(
        credentials=StaticToken(TOKEN), base_url=BASE, retry=RetryPolicy.no_wait()
    ) as client:
        view = client.with_options(retry=RetryPolicy.disabled())
        with pytest.raises(ServerError) as caught:
            await view.tracking.get("abc")
        assert caught.value.attempts == 1
        assert (await client.tracking.get("abc")).tracking_id == "abc"  # 503, then 200
    assert len(calls(mocked, "GET", BASE + TRACKING)) == 3


async def test_closing_a_view_leaves_the_parent_open(mocked: aioresponses) -> None:
    mocked.get(BASE + TRACKING, payload=RECORD, repeat=True)
    client = RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE)
    async with client.with_options(retry=RetryPolicy.disabled()) as view:
        await view.tracking.get("abc")
    await view.close()
    assert not client.closed
    assert not view.closed
    session = transport_of(client).session
    assert session is not None
    assert not session.closed
    await client.tracking.get("abc")  # the parent still works
    await view.tracking.get("abc")  # and so does the view
    await client.close()
    assert session.closed
    assert view.closed  # closing the parent closes its views
    with pytest.raises(ClientClosedError, match="closed"):
        await view.tracking.get("abc")


async def test_resources_are_cached_per_client(mocked: aioresponses) -> None:
    async with RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE) as client:
        assert client.templates is client.templates
        assert client.messages is client.messages
        assert client.tracking is client.tracking
        view = client.with_options(timeout=1.0)
        assert view.messages is not client.messages
        assert view.messages._transport is view._transport


# -- closing -------------------------------------------------------------------------------------


async def test_close_is_idempotent_and_later_calls_fail(mocked: aioresponses) -> None:
    mocked.get(BASE + TRACKING, payload=RECORD)
    client = RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE)
    assert not client.closed
    await client.tracking.get("abc")
    session = transport_of(client).session
    assert session is not None
    await client.close()
    await client.close()
    assert client.closed
    assert session.closed
    with pytest.raises(ClientClosedError, match="closed") as caught:
        await client.tracking.get("abc")
    assert isinstance(caught.value, RouteeError)
    assert isinstance(caught.value, RuntimeError)
    assert not outcome_unknown(caught.value)  # nothing was sent
    with pytest.raises(ClientClosedError):
        await client.messages.send(
            SendMessage("sender", "+306912345678", "t-1", "en", {"pin": "1234"})
        )
    assert len(all_calls(mocked)) == 1


async def test_async_with_closes_the_client(mocked: aioresponses) -> None:
    mocked.get(BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE) as client:
        await client.tracking.get("abc")
        session = transport_of(client).session
    assert client.closed
    assert session is not None
    assert session.closed


async def test_async_with_closes_the_client_on_error(mocked: aioresponses) -> None:
    client = RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE)
    with pytest.raises(KeyError):
        async with client:
            raise KeyError("boom")
    assert client.closed


async def test_closing_an_unused_client(mocked: aioresponses) -> None:
    client = RouteeViberClient(credentials=StaticToken(TOKEN), base_url=BASE)
    await client.close()
    assert client.closed
    assert all_calls(mocked) == []


async def test_a_caller_owned_session_is_never_closed(mocked: aioresponses) -> None:
    mocked.get(BASE + TRACKING, payload=RECORD, repeat=True)
    async with aiohttp.ClientSession() as session:
        async with RouteeViberClient(
            credentials=StaticToken(TOKEN), base_url=BASE, session=session
        ) as client:
            await client.tracking.get("abc")
            assert transport_of(client).session is session
        assert client.closed
        assert not session.closed
        async with session.get(BASE + TRACKING) as response:  # still usable
            assert response.status == 200
    assert len(calls(mocked, "GET", BASE + TRACKING)) == 2


# -- secrets -----------------------------------------------------------------------------------


async def test_repr_hides_secrets(mocked: aioresponses) -> None:
    mocked.post(AUTH, payload=token_answer())
    mocked.get(BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient(
        credentials=ClientCredentials(APP_ID, APP_SECRET), base_url=BASE, auth_url=AUTH
    ) as client:
        await client.tracking.get("abc")
        view = client.with_options(timeout=1.0)
        texts = [
            repr(client),
            str(client),
            repr(view),
            repr(client.messages),
            repr(client.tracking),
        ]
    assert BASE in texts[0]
    for text in texts:
        for secret in (APP_SECRET, ISSUED, basic(APP_ID, APP_SECRET).split()[1]):
            assert secret not in text, text


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        RouteeViberClient(credentials=StaticToken(TOKEN), max_concurrency=0)


@pytest.mark.parametrize("credentials", ["a-token-string", None, ("app", "secret")])
def test_credentials_must_be_a_token_provider(credentials: object) -> None:
    with pytest.raises(TypeError, match="TokenProvider"):
        RouteeViberClient(credentials=credentials)  # type: ignore[arg-type]


async def test_a_custom_token_provider_is_used(mocked: aioresponses) -> None:
    class Vault:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
            self.calls.append(auth_url)
            return AccessToken("vault-TOKEN")

    vault = Vault()
    mocked.get(BASE + TRACKING, payload=RECORD)
    async with RouteeViberClient(credentials=vault, base_url=BASE, auth_url=AUTH) as client:
        await client.tracking.get("abc")
    assert vault.calls == [AUTH]
    call = only_call(mocked, "GET", BASE + TRACKING)
    assert call.kwargs["headers"]["Authorization"] == "Bearer vault-TOKEN"
