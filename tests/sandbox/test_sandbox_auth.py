"""OAuth and bearer-token rules of the sandbox."""

from __future__ import annotations

import asyncio

import aiohttp
from sandbox_helpers import Api, MakeApi, basic

from routee_viber_async.sandbox import Sandbox

TEMPLATES = "/viber/transactional/templates"


async def _token_reply(
    http: aiohttp.ClientSession, sb: Sandbox, app_id: str, secret: str, grant: str
) -> tuple[int, dict[str, object], str]:
    async with http.post(
        sb.auth_url,
        headers={"Authorization": basic(app_id, secret)},
        data={"grant_type": grant},
    ) as response:
        return response.status, await response.json(), response.headers.get("Cache-Control", "")


async def test_oauth_issues_a_bearer_token_for_the_credentials(
    routee_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    creds = routee_sandbox.credentials
    status, body, cache = await _token_reply(
        http, routee_sandbox, creds.application_id, creds.application_secret, "client_credentials"
    )
    assert status == 200
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "viber"
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 20
    assert cache == "no-store"
    assert routee_sandbox.tokens_issued == 1


async def test_oauth_refuses_a_wrong_secret_with_401(
    routee_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _token_reply(
        http,
        routee_sandbox,
        routee_sandbox.credentials.application_id,
        "nope",
        "client_credentials",
    )
    assert status == 401
    assert body["error"] == "invalid_client"
    assert body["code"] == "401000000"
    assert routee_sandbox.tokens_issued == 0


async def test_oauth_refuses_an_unknown_application_with_401(
    routee_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    secret = routee_sandbox.credentials.application_secret
    status, _, _ = await _token_reply(
        http, routee_sandbox, "other-app", secret, "client_credentials"
    )
    assert status == 401


async def test_oauth_without_basic_auth_is_401(
    routee_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        routee_sandbox.auth_url, data={"grant_type": "client_credentials"}
    ) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_oauth_needs_the_client_credentials_grant(
    routee_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    creds = routee_sandbox.credentials
    status, body, _ = await _token_reply(
        http, routee_sandbox, creds.application_id, creds.application_secret, "password"
    )
    assert status == 400
    assert body["error"] == "unsupported_grant_type"


async def test_api_call_without_a_token_is_403(api: Api) -> None:
    reply = await api.call("GET", TEMPLATES, auth=False)
    assert reply.status == 403
    assert reply.body["code"] == "403000000"
    assert reply.body["developerMessage"]


async def test_api_call_with_an_invalid_token_is_403(api: Api) -> None:
    reply = await api.call("GET", TEMPLATES, token="not-a-token")
    assert reply.status == 403
    assert set(reply.body) == {"code", "developerMessage"}


async def test_api_call_with_a_valid_token_passes(api: Api) -> None:
    reply = await api.call("GET", TEMPLATES)
    assert reply.status == 200
    assert reply.body == []


async def test_expired_token_is_403(make_api: MakeApi) -> None:
    api = await make_api(token_ttl=0.05)
    token = await api.token()
    assert (await api.call("GET", TEMPLATES, token=token)).status == 200
    await asyncio.sleep(0.06)
    reply = await api.call("GET", TEMPLATES, token=token)
    assert reply.status == 403


async def test_revoked_tokens_are_403_and_a_new_token_works(api: Api) -> None:
    token = await api.token()
    assert api.sb.revoke_tokens() == 1
    assert (await api.call("GET", TEMPLATES, token=token)).status == 403
    fresh = await api.token()
    assert (await api.call("GET", TEMPLATES, token=fresh)).status == 200


async def test_invalid_token_status_can_be_401(make_api: MakeApi) -> None:
    api = await make_api(invalid_token_status=401)
    reply = await api.call("GET", TEMPLATES, token="bad")
    assert reply.status == 401
    assert reply.body["code"] == "401000000"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_token_is_not_accepted_as_basic_or_without_scheme(api: Api) -> None:
    token = await api.token()
    async with api.http.get(
        api.sb.base_url + TEMPLATES, headers={"Authorization": token}
    ) as response:
        assert response.status == 403


async def test_legacy_otp_answers_an_invalid_token_with_401(api: Api) -> None:
    reply = await api.call("POST", "/viber/otp", json={}, token="bad")
    assert reply.status == 401  # seed 000's error table
    assert reply.body["code"] == "401000000"


async def test_legacy_invalid_token_status_can_be_403(make_api: MakeApi) -> None:
    api = await make_api(legacy_invalid_token_status=403)
    assert (await api.call("POST", "/viber/otp", json={}, token="bad")).status == 403


async def test_token_without_viber_scope_is_403(make_api: MakeApi) -> None:
    api = await make_api(invalid_token_status=401)
    creds = api.sb.no_viber_credentials
    status, body, _ = await _token_reply(
        api.http, api.sb, creds.application_id, creds.application_secret, "client_credentials"
    )
    assert status == 200
    assert body["scope"] == "sms"
    reply = await api.call("GET", TEMPLATES, token=str(body["access_token"]))
    assert reply.status == 403  # not permitted, whatever invalid_token_status says
    assert reply.body["code"] == "403000000"
