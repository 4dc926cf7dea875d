"""Logging: what is logged at DEBUG and INFO, and that no secret is ever logged or shown."""

from __future__ import annotations

import base64
import logging

import pytest
from transport_helpers import APP_ID, APP_SECRET, FakeRoutee, MakeTransport, reply

from routee_viber_async._auth import ClientCredentials
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import AuthenticationError, ServerError, ValidationError

PIN = "918273"
QUERY_VALUE = "query-value-QQQ"
BODY = b'{"to":"+306900000000","templateParams":{"pin":"918273"}}'


def _texts(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records]


async def test_no_secret_in_log_records_reprs_or_errors(
    routee: FakeRoutee, make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="routee_viber_async")
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=3))
    params = {"senderInfoTrackingId": QUERY_VALUE}
    await transport.request("POST", "/m", params=params, body=BODY)
    routee.revoke_all()  # 401 -> refresh -> replay
    routee.script(reply(503), reply(200, {"done": True}))
    assert (await transport.request("POST", "/m", params=params, body=BODY)).data == {"done": True}
    routee.script(reply(400, {"code": "400019029", "validationIssues": []}))
    with pytest.raises(ValidationError) as validation:
        await transport.request("POST", "/m", params=params, body=BODY)
    routee.script(*[reply(502, text="upstream " + PIN)] * 3)
    with pytest.raises(ServerError) as server_error:
        await transport.request("GET", "/g", params=params)

    bad = make_transport(token_provider=ClientCredentials(APP_ID, "other-SECRET-x"))
    with pytest.raises(AuthenticationError) as auth_error:
        await bad.request("POST", "/m", params=params, body=BODY)

    secrets = [
        APP_SECRET,
        "other-SECRET-x",
        base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode(),
        PIN,
        QUERY_VALUE,
        *routee.issued,
    ]
    assert len(routee.issued) == 2
    texts = _texts(caplog.records)
    texts += [repr(transport), repr(transport.tokens), repr(transport.tokens.token)]
    for error in (validation.value, server_error.value, auth_error.value):
        texts += [str(error), repr(error), repr(error.headers)]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)

    messages = [r.getMessage() for r in caplog.records]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("POST /m -> 200 (attempt 1, ") for m in messages)
    assert any(m.startswith("POST /m -> 401 (attempt 1, ") for m in messages)
    assert any(m.startswith("POST /m -> 503 (attempt 2, ") for m in messages)
    retry_line = "retrying POST /m in 0.000s: try 1 of 3 failed (HTTP 503)"
    assert retry_line in messages
    assert any("replaying once with a new one" in m for m in messages)
    assert debug
    assert info
    assert all(r.name == "routee_viber_async" for r in caplog.records)


async def test_nothing_is_formatted_when_logging_is_off(
    routee: FakeRoutee, make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="routee_viber_async")
    transport = make_transport()
    routee.script(reply(503))
    await transport.request("GET", "/x")
    assert caplog.records == []


async def test_ambiguous_decision_is_logged_at_info(
    routee: FakeRoutee, make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routee_viber_async")
    transport = make_transport(retry=RetryPolicy.no_wait(retry_ambiguous_sends=False))
    routee.script(reply(500))
    with pytest.raises(ServerError):
        await transport.request("POST", "/m", params={"q": QUERY_VALUE}, body=BODY)
    [record] = [r for r in caplog.records if "may have reached" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "not retrying POST /m after HTTP 500: it may have reached the server "
        "(retry_ambiguous_sends=False)"
    )
