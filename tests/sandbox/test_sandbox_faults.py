"""Fault injection: each kind, before or after acceptance, counting, and where faults apply."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import Api, MakeApi, basic

from routee_viber_async.sandbox import FaultKind, FaultRates

TEMPLATES = "/viber/transactional/templates"
PARAMS = {"user_name": "A", "order_id": "1"}


async def _ready(make_api: MakeApi, **options: Any) -> tuple[Api, dict[str, Any]]:
    """A sandbox (with ``options``) and an approved template, fetched before any fault."""
    api = await make_api(moderation_delay=None, **options)
    await api.token()
    return api, await api.approved_template()


async def test_rate_limit_is_429_with_retry_after(make_api: MakeApi) -> None:
    api = await make_api(faults=FaultRates(rate_limit=1.0, retry_after=2))
    reply = await api.call("GET", TEMPLATES)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "2"
    assert reply.body["code"] == "429000000"
    assert api.sb.fault_counts["rate_limit"] == 1


async def test_retry_after_can_be_fractional(make_api: MakeApi) -> None:
    api = await make_api(faults={"rate_limit": 1.0, "retry_after": 0.05})
    reply = await api.call("GET", TEMPLATES)
    assert reply.headers["Retry-After"] == "0.05"


@pytest.mark.parametrize("kind", [FaultKind.RATE_LIMIT, FaultKind.SERVICE_UNAVAILABLE])
async def test_429_and_503_always_strike_before_acceptance(
    make_api: MakeApi, kind: FaultKind
) -> None:
    rate = {kind.value: 1.0}
    api, template = await _ready(make_api, fault_after_accept_share=1.0)
    api.sb.set_faults(rate)  # switched on after the setup
    reply = await api.send(template, templateParams=PARAMS)
    assert reply.status == {"rate_limit": 429, "service_unavailable": 503}[kind.value]
    assert api.sb.messages == []
    assert api.sb.faults_after_accept == 0


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.SERVER_ERROR, 500),
        (FaultKind.BAD_GATEWAY, 502),
        (FaultKind.SERVICE_UNAVAILABLE, 503),
        (FaultKind.GATEWAY_TIMEOUT, 504),
    ],
)
async def test_server_errors_before_acceptance_store_nothing(
    make_api: MakeApi, kind: FaultKind, status: int
) -> None:
    api, template = await _ready(make_api)
    api.sb.inject_fault(kind)
    reply = await api.send(template, templateParams=PARAMS)
    assert reply.status == status
    assert reply.body["code"] == f"{status}000000"
    assert api.sb.messages == []
    assert api.sb.fault_counts[kind.value] == 1
    assert (await api.send(template, templateParams=PARAMS)).status == 200  # one request only


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.SERVER_ERROR, 500), (FaultKind.BAD_GATEWAY, 502), (FaultKind.GATEWAY_TIMEOUT, 504)],
)
async def test_server_errors_after_acceptance_store_the_message(
    make_api: MakeApi, kind: FaultKind, status: int
) -> None:
    api, template = await _ready(make_api)
    api.sb.inject_fault(kind, after_accept=True)
    reply = await api.send(template, templateParams=PARAMS, seq=5)
    assert reply.status == status
    (message,) = api.sb.messages
    assert message.seq == 5
    await api.sb.wait_idle()
    assert api.sb.message(message.tracking_id).status == "DELIVERED"
    assert api.sb.faults_after_accept == 1


async def test_retried_send_after_an_accepted_fault_is_a_duplicate_seq(make_api: MakeApi) -> None:
    api, template = await _ready(make_api)
    api.sb.inject_fault(FaultKind.BAD_GATEWAY, after_accept=True)
    assert (await api.send(template, templateParams=PARAMS, seq=77)).status == 502
    assert (await api.send(template, templateParams=PARAMS, seq=77)).status == 200
    assert api.sb.duplicate_seq_count == 1


async def test_fault_after_accept_share_splits_ambiguous_faults(make_api: MakeApi) -> None:
    api, template = await _ready(make_api, seed=11)
    api.sb.set_faults(FaultRates(server_error=1.0), fault_after_accept_share=0.5)
    for _ in range(60):
        assert (await api.send(template, templateParams=PARAMS)).status == 500
    stored = len(api.sb.messages)
    assert 15 <= stored <= 45
    assert api.sb.faults_after_accept == stored


@pytest.mark.parametrize("after_accept", [False, True])
async def test_dropped_connection_is_a_client_connection_error(
    make_api: MakeApi, after_accept: bool
) -> None:
    api, template = await _ready(make_api)
    api.sb.inject_fault(FaultKind.DROP_CONNECTION, after_accept=after_accept)
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.send(template, templateParams=PARAMS)
    assert len(api.sb.messages) == (1 if after_accept else 0)
    assert api.sb.fault_counts["drop_connection"] == 1
    assert (await api.send(template, templateParams=PARAMS)).status == 200


async def test_slow_reply_answers_late(make_api: MakeApi) -> None:
    api, template = await _ready(make_api, faults=FaultRates(slow_reply_delay=0.05))
    api.sb.inject_fault(FaultKind.SLOW_REPLY)
    started = time.monotonic()
    reply = await api.send(template, templateParams=PARAMS)
    assert reply.status == 200
    assert time.monotonic() - started >= 0.05
    assert api.sb.fault_counts["slow_reply"] == 1


@pytest.mark.parametrize("after_accept", [False, True])
async def test_slow_reply_times_out_the_client(make_api: MakeApi, after_accept: bool) -> None:
    api, template = await _ready(make_api, faults=FaultRates(slow_reply_delay=0.05))
    token = await api.token()
    api.sb.inject_fault(FaultKind.SLOW_REPLY, after_accept=after_accept)
    body = {
        "senderInfoTrackingId": api.sb.sender_id,
        "to": "+306912345678",
        "templateId": template["templateId"],
        "templateLang": "en",
        "templateParams": PARAMS,
    }
    with pytest.raises(TimeoutError):
        async with api.http.post(
            api.sb.base_url + "/viber/transactional/messages",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=0.01),
        ) as response:
            await response.read()
    await asyncio.sleep(0.08)
    # After acceptance the send is stored although the caller gave up; before, it is not.
    assert len(api.sb.messages) == (1 if after_accept else 0)


async def test_token_expiry_revokes_the_token(make_api: MakeApi) -> None:
    api = await make_api()
    token = await api.token()
    api.sb.inject_fault(FaultKind.TOKEN_EXPIRY)
    first = await api.call("GET", TEMPLATES, token=token)
    assert first.status == 403
    assert (await api.call("GET", TEMPLATES, token=token)).status == 403
    assert (await api.call("GET", TEMPLATES, token=await api.token())).status == 200
    assert api.sb.fault_counts["token_expiry"] == 1


async def test_token_expiry_answers_401_when_configured(make_api: MakeApi) -> None:
    api = await make_api(invalid_token_status=401, faults=FaultRates(token_expiry=1.0))
    assert (await api.call("GET", TEMPLATES)).status == 401


async def test_faults_do_not_touch_oauth_by_default(make_api: MakeApi) -> None:
    api = await make_api(faults=FaultRates(service_unavailable=1.0))
    await api.token()
    assert api.sb.fault_counts["service_unavailable"] == 0


async def test_faults_can_include_oauth(make_api: MakeApi) -> None:
    api = await make_api(faults=FaultRates(service_unavailable=1.0, include_oauth=True))
    creds = api.sb.credentials
    async with api.http.post(
        api.sb.auth_url,
        headers={"Authorization": basic(creds.application_id, creds.application_secret)},
        data={"grant_type": "client_credentials"},
    ) as response:
        assert response.status == 503
    assert api.sb.tokens_issued == 0


async def test_inspection_endpoint_is_never_faulted(make_api: MakeApi) -> None:
    api = await make_api(faults=FaultRates(drop_connection=1.0))
    reply = await api.call("GET", "/sandbox/messages", auth=False)
    assert reply.status == 200
    assert reply.body["faultCounts"]["drop_connection"] == 0


async def test_fault_counts_name_every_kind(make_api: MakeApi) -> None:
    api = await make_api(faults=FaultRates(server_error=0.5, bad_gateway=0.5))
    for _ in range(20):
        await api.call("GET", TEMPLATES)
    counts = api.sb.fault_counts
    assert set(counts) == {kind.value for kind in FaultKind}
    assert counts["server_error"] + counts["bad_gateway"] == 20
    assert counts["server_error"] > 0
    assert counts["bad_gateway"] > 0


async def test_the_seed_makes_faults_reproducible(make_api: MakeApi) -> None:
    runs = []
    for _ in range(2):
        api = await make_api(seed=99, faults=FaultRates(server_error=0.3, rate_limit=0.3))
        runs.append([(await api.call("GET", TEMPLATES)).status for _ in range(30)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 429, 500}


def test_fault_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="add up"):
        FaultRates(server_error=0.6, bad_gateway=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRates(rate_limit=1.5)


async def test_only_ambiguous_faults_may_strike_after_acceptance(make_api: MakeApi) -> None:
    api = await make_api()
    with pytest.raises(ValueError, match="before acceptance"):
        api.sb.inject_fault(FaultKind.RATE_LIMIT, after_accept=True)
    api.sb.inject_fault("gateway_timeout", times=2)
    assert [(await api.call("GET", TEMPLATES)).status for _ in range(3)] == [504, 504, 200]
