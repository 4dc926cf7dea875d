"""Secret audit: no access token, application secret or pin escapes, whatever the flow.

Representative flows run against the sandbox with every logger at DEBUG (the root logger,
``routee_viber_async`` and aiohttp's) captured into one buffer: templates, sends with retries,
token refreshes and timeouts, legacy OTP, tracking, the fan-out, webhooks received over HTTP,
the command line, Routee's 400019029 answer and refused credentials. Then every log line, every
exception's message, repr, body, headers and traceback, every model repr and every file written
(results, journal) is searched for every secret: each access token the sandbox issued (sniffed
where it issues them), each application secret and its Basic header, and each pin (distinctive
values such as ``P12345Q``, so that a substring hit is a leak).

Every fault is a fixed number of injected ones (``Sandbox.inject_fault``), never a random draw:
which request a drawn fault lands on depends on timing, and a CLI run whose template lookup
drew four faults in a row ended before writing the files this audit reads.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from internals import transport_of
from reliability_helpers import client_for, otp_template, pin_for, recipient

from routee_viber_async import (
    ClientCredentials,
    CreateTemplate,
    LegacyOtp,
    OtpParams,
    RetryPolicy,
    RouteeError,
    RouteeViberClient,
    SendMessage,
    StaticToken,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    ValidationError,
    VarExample,
)
from routee_viber_async._converter import to_masked
from routee_viber_async.integrations.aiohttp import webhook_routes
from routee_viber_async.sandbox import Sandbox
from routee_viber_async.webhooks import parse_callback, parse_delivery_callback

LOGGERS = ["", "routee_viber_async", "aiohttp", "aiohttp.client", "aiohttp.server",
           "aiohttp.access", "aiohttp.web", "aiohttp.internal", "asyncio"]  # fmt: skip
WRONG_SECRET = "WRONG-secret-S9x7Zq"
STATIC_TOKEN = "static-token-T4k3N"


class Audit:
    """Everything a flow exposed, and the secrets that must not be in it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.secrets: set[str] = set()
        self.pins: list[str] = []

    def pin(self, n: int) -> str:
        value = f"P{n}Q"
        self.pins.append(value)
        return value

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        self.texts += [repr(getattr(exc, attr, None)) for attr in ("body", "headers", "issues")]
        cause = exc.__cause__ or exc.__context__
        if cause is not None:
            self.texts += [str(cause), repr(cause)]

    def show(self, *objects: Any) -> None:
        for obj in objects:
            self.texts += [repr(obj), str(obj)]

    def file(self, path: Path) -> None:
        self.texts.append(path.read_bytes().decode("utf-8", "replace"))

    async def expect_error(self, call: Any) -> RouteeError:
        try:
            await call
        except RouteeError as exc:
            self.error(exc)
            return exc
        raise AssertionError("expected an error")


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)r"))
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Sandbox, list[str]]]:
    """A sandbox, and every access token it issues (sniffed where it issues them)."""
    async with Sandbox(moderation_delay=0.01, delivery_delay=0.02, seed=5) as sb:
        issued: list[str] = []
        tokens = sb._ctx.tokens
        issue = tokens.issue

        def sniff(grant: Any) -> str:
            token = issue(grant)
            issued.append(token)
            return token

        tokens.issue = sniff  # type: ignore[method-assign]
        yield sb, issued


async def _receiver(audit: Audit) -> AsyncIterator[str]:
    async def on_delivery(callback: Any) -> None:
        audit.show(callback)
        if callback.status.name == "SENT":
            raise RuntimeError("the handler failed (logged with its traceback)")

    app = web.Application()
    app.add_routes(webhook_routes(on_delivery=on_delivery))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/routee/delivery"
    finally:
        await runner.cleanup()


async def _api_flows(sb: Sandbox, audit: Audit, callback_url: str) -> None:
    template_id = await otp_template(sb)
    policy = RetryPolicy.no_wait(max_attempts=3, retry_ambiguous_sends=True)  # at-least-once
    async with client_for(sb, retry=policy, forbidden_refresh_after=0.0, timeout=0.3) as client:
        # Templates: create, list, get, set and remove the callback, delete.
        other = await client.templates.create(
            sb.sender_id,
            CreateTemplate(
                TemplateCategory.TRANSACTIONAL,
                [TemplateParam("name")],
                [TemplateLocale("en", "Hi {{name}}")],
                [VarExample("name", "Al")],
            ),
        )
        audit.show(other, [t async for t in client.templates.list()])
        audit.show(await client.templates.update_callback(other.template_id, "https://x.example/m"))
        audit.show(await client.templates.update_callback(other.template_id, None))
        audit.show(await client.templates.delete(other.template_id))

        # Sends, through retries, a token refresh and a timeout.
        def message(n: int, **changes: Any) -> SendMessage:
            params = {"pin": audit.pin(n), "minutes": "5"}
            return SendMessage(
                sb.sender_id, recipient(n % 1000), template_id, "en", params, **changes
            )

        first = message(12345, callback_url=callback_url)
        sb.inject_fault("rate_limit")
        sb.inject_fault("service_unavailable")
        result = await client.messages.send(first)
        audit.show(first, result)
        sb.inject_fault("token_expiry")  # 403 -> refresh -> replay (logged at INFO)
        audit.show(await client.messages.send(message(12346)))
        sb.inject_fault("server_error", after_accept=True)
        sb.inject_fault("drop_connection", after_accept=True)
        audit.show(await client.messages.send(message(12347)))  # retried: may be a duplicate
        sb.set_faults({"slow_reply_delay": 1.0})  # well past the client's 0.3 s timeout
        sb.inject_fault("slow_reply", times=3)
        await audit.expect_error(client.messages.send(message(12348)))  # times out 3 times
        sb.set_faults(None)
        view = client.with_options(retry=RetryPolicy.no_wait(retry_ambiguous_sends=False))
        sb.inject_fault("gateway_timeout", after_accept=True)
        await audit.expect_error(view.messages.send(message(12349)))

        # Tracking.
        audit.show(await client.tracking.get(result.tracking_id))
        audit.show(await client.tracking.wait(result.tracking_id, timeout=5, poll_interval=0.01))
        await audit.expect_error(client.tracking.get("no-such-tracking-id"))

        # Legacy OTP, with OtpParams and with a mapping.
        otp = LegacyOtp(sb.sender_id, recipient(7), template_params=OtpParams(pin=audit.pin(23456)))
        audit.show(otp, await client.messages.send_otp(otp))
        otp = LegacyOtp(sb.sender_id, recipient(8), template_params={"pin": audit.pin(23457)})
        sb.inject_fault("bad_gateway")
        audit.show(otp, await client.messages.send_otp(otp))

        # Routee's 400019029 (checked by the server only: validate=False) and local refusals.
        too_long = message(23458)
        too_long = SendMessage(
            too_long.sender_info_tracking_id, too_long.to, template_id, "en",
            {"pin": too_long.template_params["pin"] + "-far-too-long-for-routee", "x": "1"},
        )  # fmt: skip
        audit.pins.append(too_long.template_params["pin"])
        error = await audit.expect_error(client.messages.send(too_long, validate=False))
        assert isinstance(error, ValidationError)
        assert error.code == "400019029"
        await audit.expect_error(client.messages.send(too_long))

        # The fan-out, some inputs refused locally; its first six requests fail (at most two
        # for one input, whose third attempt then succeeds).
        inputs = [message(34000 + i) for i in range(20)] + [too_long]
        sb.set_faults({"retry_after": 0.01})
        sb.inject_fault("rate_limit", times=3)
        sb.inject_fault("server_error", times=3)
        async for outcome in client.messages.send_many(inputs, concurrency=5):
            audit.show(outcome)
            if outcome.error is not None:
                audit.error(outcome.error)
        sb.set_faults(None)
        audit.show(client, client._transport, transport_of(client).tokens)
        audit.show(transport_of(client).tokens.token)
        await sb.wait_idle(5)  # the delivery callbacks reached the receiver

    # Refused credentials, a token without Viber permission, a static token.
    bad = ClientCredentials(sb.credentials.application_id, WRONG_SECRET)
    for credentials in (bad, sb.no_viber_credentials, StaticToken(STATIC_TOKEN)):
        async with RouteeViberClient(
            credentials=credentials, base_url=sb.base_url, auth_url=sb.auth_url
        ) as client:
            audit.show(credentials, client)
            await audit.expect_error(client.messages.send(message(45678 + len(audit.pins))))
            await audit.expect_error(client.templates.get(template_id))


def _webhook_flows(audit: Audit) -> None:
    pin = audit.pin(56789)
    body = (
        '{"trackingId": "t-1", "status": {"name": "DELIVERED"}, '
        f'"transactionalTemplate": {{"templateParams": {{"pin": "{pin}"}}}}, '
        f'"x": {{"pin": "{pin}"}}}}'
    )
    callback = parse_delivery_callback(body)
    audit.show(callback, to_masked(callback))
    for bad in (body[:-2], body.replace('"t-1"', "5"), body.replace("trackingId", "nope")):
        try:
            parse_callback(bad.encode())
        except ValidationError as exc:
            audit.error(exc)


async def _cli_flows(sb: Sandbox, audit: Audit, tmp_path: Path) -> None:
    template_id = await otp_template(sb)
    input_path = tmp_path / "in.csv"
    rows = range(30)
    audit.pins += [pin_for(i) for i in rows]
    input_path.write_text(
        "to,pin,minutes\n" + "".join(f"{recipient(i)},{pin_for(i)},5\n" for i in rows)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEE_")}
    env.update(
        ROUTEE_APPLICATION_ID=sb.credentials.application_id,
        ROUTEE_APPLICATION_SECRET=sb.credentials.application_secret,
        ROUTEE_BASE_URL=sb.base_url,
        ROUTEE_AUTH_URL=sb.auth_url,
    )
    cli = [sys.executable, "-m", "routee_viber_async"]
    output = tmp_path / "out.jsonl"
    runs = [
        [*cli, "send-many", str(input_path), "--sender", sb.sender_id, "--template-id",
         template_id, "--lang", "en", "--output", str(output)],
        [*cli, "send", "--sender", sb.sender_id, "--to", recipient(99), "--template-id",
         template_id, "--lang", "en", "--param", f"pin={audit.pin(67890)}", "--param", "minutes=5"],
        [*cli, "send", "--sender", sb.sender_id, "--to", recipient(98), "--template-id",
         template_id, "--lang", "en", "--param", f"pin={audit.pin(67891)}-url.example.com"],
        [*cli, "templates", "get", "no-such-template"],
    ]  # fmt: skip
    # send-many's template lookup fails twice and is retried; the first send's first attempt
    # fails retryably, its second (HTTP 500: it may have been accepted) ends the command.
    faults = [("server_error", "service_unavailable"), ("service_unavailable", "server_error")]
    exit_codes = []
    faults_before = sum(sb.fault_counts.values())
    for args, kinds in zip(runs, [*faults, (), ()], strict=True):
        for kind in kinds:
            sb.inject_fault(kind)
        process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        exit_codes.append(process.returncode)
        audit.texts += [out.decode(), err.decode()]
    assert exit_codes == [0, 1, 2, 1]  # sent; unknown outcome; refused locally; not found
    assert sum(sb.fault_counts.values()) - faults_before == 4  # every injected fault was met
    bad_env = {**env, "ROUTEE_APPLICATION_SECRET": WRONG_SECRET}
    process = await asyncio.create_subprocess_exec(
        *cli, "templates", "list", env=bad_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    assert err.startswith(b"routee-viber templates list: ")
    assert b"HTTP 401" in err
    audit.texts += [out.decode(), err.decode()]
    _audit_files(audit, tmp_path, input_path)


def _audit_files(audit: Audit, directory: Path, input_path: Path) -> None:
    """Every file the command line wrote (results, journal and its WAL) but its input."""
    written = [path for path in directory.iterdir() if path != input_path]
    assert any(path.suffix == ".jsonl" for path in written)
    assert any(path.name.endswith(".journal") for path in written)
    for path in written:
        audit.file(path)


def _basic(app_id: str, secret: str) -> str:
    return base64.b64encode(f"{app_id}:{secret}".encode()).decode()


async def test_no_secret_in_logs_errors_reprs_or_files(
    sandbox: tuple[Sandbox, list[str]], debug_log: io.StringIO, tmp_path: Path
) -> None:
    sb, issued = sandbox
    audit = Audit()
    async for callback_url in _receiver(audit):
        await _api_flows(sb, audit, callback_url)
    _webhook_flows(audit)
    await _cli_flows(sb, audit, tmp_path)

    log = debug_log.getvalue()
    assert "routee_viber_async DEBUG" in log  # the capture works
    assert "replaying once with a new one" in log
    assert "callback handler failed" in log
    app_id = sb.credentials.application_id
    secrets = {
        sb.credentials.application_secret: "application secret",
        sb.no_viber_credentials.application_secret: "application secret (no Viber scope)",
        WRONG_SECRET: "refused application secret",
        STATIC_TOKEN: "static token",
        _basic(app_id, sb.credentials.application_secret): "Basic header",
        _basic(app_id, WRONG_SECRET): "Basic header (refused)",
    }
    assert len(issued) >= 8, "tokens were not sniffed"
    secrets.update(dict.fromkeys(issued, "access token"))
    secrets.update(dict.fromkeys(audit.pins, "pin"))
    texts = [log, *audit.texts]
    leaks = sorted(
        {(kind, secret) for secret, kind in secrets.items() for text in texts if secret in text}
    )
    assert leaks == [], leaks
