"""End to end, the client's safety properties: no secret or pin anywhere, clean cancellation."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from integration_helpers import PIN, MakeClient, MakeSandbox, otp_message
from internals import transport_of

from routee_viber_async import (
    AccessToken,
    SendMessage,
    ValidationError,
)
from routee_viber_async.pytest_plugin import approved_template


async def test_no_secret_or_pin_in_logs_reprs_or_errors(
    make_sandbox: MakeSandbox, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="routee_viber_async")
    sandbox = await make_sandbox(invalid_token_status=401)
    client = make_client(sandbox)
    template_id = (await approved_template(client, sandbox)).template_id
    tokens: list[AccessToken | None] = [transport_of(client).tokens.token]

    sandbox.revoke_tokens()  # 401 -> refresh -> replay (logged at INFO)
    sandbox.inject_fault("service_unavailable", times=1)  # then a retry (logged at INFO)
    message = otp_message(sandbox.sender_id, template_id)
    result = await client.messages.send(message)
    tokens.append(transport_of(client).tokens.token)
    with pytest.raises(ValidationError) as refused:  # the server's 400019029
        await client.messages.send(
            otp_message(sandbox.sender_id, template_id, template_params={"pin": PIN, "x": "y"}),
            validate=False,
        )
    with pytest.raises(ValidationError) as local:
        await client.messages.send(
            otp_message(sandbox.sender_id, template_id, template_params={"pin": PIN + "x" * 30})
        )
    outcomes = [o async for o in client.messages.send_many([message], concurrency=1)]

    secrets = [PIN, sandbox.credentials.application_secret]
    secrets += [token.value for token in tokens if token is not None]
    assert len(secrets) == 4
    texts = [f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records]
    texts += [repr(client), repr(message), str(message), repr(result), repr(outcomes)]
    texts += [repr(transport_of(client).tokens), repr(sandbox.credentials)]
    for error in (refused.value, local.value):
        texts += [str(error), repr(error), repr(error.body), repr(error.issues)]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)
    assert "***" in repr(message)
    assert any("replaying once" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage().startswith("retrying POST") for r in caplog.records)
    assert refused.value.code == "400019029"
    assert "PARAM_VALUE_TOO_LONG" in local.value.codes


async def test_a_cancelled_send_frees_its_slot(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox(faults={"slow_reply_delay": 0.5})
    client = make_client(sandbox, max_concurrency=1)
    template_id = (await approved_template(client, sandbox)).template_id
    sandbox.inject_fault("slow_reply", times=1)
    slow = asyncio.create_task(client.messages.send(otp_message(sandbox.sender_id, template_id)))
    async with asyncio.timeout(2):  # in flight (the sandbox picked its fault), holding the slot
        while sandbox.fault_counts["slow_reply"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    started = time.monotonic()
    result = await client.messages.send(otp_message(sandbox.sender_id, template_id))
    assert time.monotonic() - started < 0.35  # did not wait for the slow reply's slot
    assert sandbox.message(result.tracking_id).seq == result.seq
    assert sandbox.fault_counts["slow_reply"] == 1


async def test_a_cancelled_wait_ends_cleanly(
    make_sandbox: MakeSandbox, make_client: MakeClient
) -> None:
    sandbox = await make_sandbox(delivery_delay=5)  # never final during the test
    client = make_client(sandbox)
    template_id = (await approved_template(client, sandbox)).template_id
    sent = await client.messages.send(
        SendMessage(sandbox.sender_id, "+306912345678", template_id, "en", {"pin": PIN})
    )
    waiting = asyncio.create_task(
        client.tracking.wait(sent.tracking_id, timeout=10, poll_interval=5)
    )
    await asyncio.sleep(0.05)  # first poll done, now sleeping before the next
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not transport_of(client).semaphore.locked()
    assert (await client.tracking.get(sent.tracking_id)).tracking_id == sent.tracking_id
