"""Both integrations side by side (the `integration` fixture), then framework specifics: the
FastAPI lifespan and dependency, aiohttp's cleanup_ctx, the receiver core, imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Annotated, Any

import aiohttp
import pytest
from aiohttp import web
from fastapi import Depends, FastAPI, Request
from webhook_helpers import Integration, serve_asgi

from routee_viber_async import RouteeViberClient, StaticToken
from routee_viber_async.integrations.aiohttp import routee_client_ctx, webhook_routes
from routee_viber_async.integrations.fastapi import (
    COMBINED_ROUTE,
    DELIVERY_ROUTE,
    MODERATION_ROUTE,
    STATE_KEY,
    get_routee_client,
    routee_lifespan,
    webhook_router,
)
from routee_viber_async.webhooks import WebhookReceiver


async def ignore(callback: object) -> None:
    pass


def is_open(client: RouteeViberClient) -> bool:
    return not client.closed


def make_client() -> RouteeViberClient:
    return RouteeViberClient(credentials=StaticToken("token"), base_url="http://127.0.0.1:9")


# -- both integrations ------------------------------------------------------------------------


async def test_the_app_opens_one_client_and_closes_it(
    integration: Integration, http: aiohttp.ClientSession
) -> None:
    """FastAPI's lifespan and ``Depends(get_routee_client)``; aiohttp's ``cleanup_ctx``."""
    made: list[RouteeViberClient] = []

    def factory() -> RouteeViberClient:
        made.append(make_client())
        return made[-1]

    async with integration.serve_with_client(factory) as base:
        answers = []
        for _ in range(2):
            async with http.get(f"{base}/client") as response:
                assert response.status == 200
                answers.append(await response.json())
        [client] = made
        assert is_open(client)
    assert not is_open(client)
    assert answers[0] == answers[1]
    assert answers[0] == {
        "id": id(client),
        "stored": True,
        "callback_url": f"{base}/routee/delivery",
    }


def test_the_routes_are_named_and_found_at_their_paths(integration: Integration) -> None:
    app = integration.app(on_delivery=ignore, on_moderation=ignore, combined_path="/routee")
    paths = {
        route: integration.path_for(app, route)
        for route in (DELIVERY_ROUTE, MODERATION_ROUTE, COMBINED_ROUTE)
    }
    assert paths == {
        DELIVERY_ROUTE: "/routee/delivery",
        MODERATION_ROUTE: "/routee/moderation",
        COMBINED_ROUTE: "/routee",
    }


def test_the_endpoints_need_a_handler_or_a_path(integration: Integration) -> None:
    endpoints = integration.endpoints
    with pytest.raises(ValueError, match="on_delivery"):
        endpoints()
    with pytest.raises(ValueError, match="no endpoint"):
        endpoints(on_delivery=ignore, delivery_path=None)
    with pytest.raises(ValueError, match="no endpoint"):
        endpoints(on_moderation=ignore, moderation_path=None)
    with pytest.raises(ValueError, match="secret"):
        endpoints(on_delivery=ignore, secret="")
    with pytest.raises(ValueError, match="max_body_size"):
        endpoints(on_delivery=ignore, max_body_size=0)


# -- FastAPI -----------------------------------------------------------------------------------


async def test_fastapi_lifespan_with_client_options_and_composed() -> None:
    routee = routee_lifespan(credentials=StaticToken("token"), base_url="http://127.0.0.1:9")
    app = FastAPI()
    async with routee(app) as state:
        client = state[STATE_KEY]
        assert isinstance(client, RouteeViberClient)
        assert getattr(app.state, STATE_KEY) is client
    assert client.closed
    assert not hasattr(app.state, STATE_KEY)


async def test_fastapi_lifespan_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEE_ACCESS_TOKEN", "token")
    monkeypatch.setenv("ROUTEE_BASE_URL", "http://127.0.0.1:9")
    async with routee_lifespan()(FastAPI()) as state:
        assert "127.0.0.1:9" in repr(state[STATE_KEY])


async def test_fastapi_lifespan_takes_a_factory_or_options() -> None:
    lifespan = routee_lifespan(client_factory=make_client, base_url="http://x")
    with pytest.raises(TypeError, match="not both"):
        async with lifespan(FastAPI()):
            pass


async def test_get_routee_client_without_the_lifespan(http: aiohttp.ClientSession) -> None:
    app = FastAPI()

    @app.get("/client")
    async def which(client: Annotated[RouteeViberClient, Depends(get_routee_client)]) -> str:
        return repr(client)

    async with serve_asgi(app) as base, http.get(f"{base}/client") as response:
        assert response.status == 500
    with pytest.raises(RuntimeError, match=r"FastAPI\(lifespan=routee_lifespan"):
        get_routee_client(Request({"type": "http", "app": app, "state": {}}))


def test_fastapi_router_prefix_and_openapi() -> None:
    router = webhook_router(
        on_delivery=ignore, on_moderation=ignore, combined_path="/routee", prefix="/hooks"
    )
    app = FastAPI()
    app.include_router(router)
    assert app.url_path_for(DELIVERY_ROUTE) == "/hooks/routee/delivery"
    assert app.url_path_for(MODERATION_ROUTE) == "/hooks/routee/moderation"
    schema = app.openapi()
    operation = schema["paths"]["/hooks/routee/delivery"]["post"]
    assert operation["tags"] == ["routee"]
    assert set(operation["responses"]) >= {"200", "400", "403", "413", "500"}
    assert "requestBody" in operation
    assert "/hooks/routee" in schema["paths"]


# -- aiohttp -----------------------------------------------------------------------------------


async def test_aiohttp_cleanup_ctx_with_a_key_of_your_own_and_options() -> None:
    key = web.AppKey("my_routee", RouteeViberClient)
    app = web.Application()
    ctx = routee_client_ctx(key, credentials=StaticToken("token"), base_url="http://127.0.0.1:9")
    steps = ctx(app)
    await anext(steps)
    client = app[key]
    assert isinstance(client, RouteeViberClient)
    with pytest.raises(StopAsyncIteration):
        await anext(steps)
    assert client.closed


def test_aiohttp_routes_are_posts_in_order() -> None:
    routes = webhook_routes(on_delivery=ignore, on_moderation=ignore, combined_path="/routee")
    assert [(r.method, r.path, r.kwargs["name"]) for r in routes] == [
        ("POST", "/routee/delivery", "routee_delivery_callback"),
        ("POST", "/routee/moderation", "routee_moderation_callback"),
        ("POST", "/routee", "routee_callback"),
    ]


# -- the receiver core -------------------------------------------------------------------------


async def test_the_receiver_refuses_a_bad_content_length() -> None:
    receiver = WebhookReceiver(on_delivery=ignore)

    async def nothing() -> Any:
        return
        yield

    for value in ("abc", "-1"):
        answer = await receiver.receive(
            "delivery", token=None, content_length=value, body=nothing()
        )
        assert (answer.status, answer.body["detail"]) == (400, "invalid Content-Length header")


# -- optional dependency -----------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_webhooks_and_the_aiohttp_integration_do_not_import_fastapi() -> None:
    result = run_python(
        """
        import sys
        import routee_viber_async.webhooks
        import routee_viber_async.integrations
        import routee_viber_async.integrations.aiohttp
        loaded = sorted(m for m in ("fastapi", "starlette", "pydantic") if m in sys.modules)
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


def test_the_fastapi_integration_without_fastapi_says_which_extra() -> None:
    result = run_python(
        """
        import sys
        sys.modules["fastapi"] = None  # as if it were not installed
        try:
            import routee_viber_async.integrations.fastapi
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'routee-viber-async[fastapi]'" in result.stdout
