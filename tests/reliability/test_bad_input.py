"""Bad input at every public entry point gives a clear error that names the field or option.

Client options, ``with_options``, ``RetryPolicy``/``RetryBudget``, credentials, request models,
resource arguments, webhook parsers and the command line.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from reliability_helpers import otp_template, pin_for, recipient

from routee_viber_async import (
    ClientCredentials,
    CreateTemplate,
    DeliveryScope,
    LegacyOtp,
    RetryBudget,
    RetryPolicy,
    RouteeViberClient,
    SendMessage,
    StaticToken,
    TemplateCallbackUpdate,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    ValidationError,
    VarExample,
)
from routee_viber_async.cli import main
from routee_viber_async.cli._send_many import SendMany
from routee_viber_async.sandbox import Sandbox
from routee_viber_async.webhooks import (
    parse_callback,
    parse_delivery_callback,
    parse_moderation_callback,
)

TOKEN = StaticToken("t")
CLOSED = "http://127.0.0.1:9"  # nothing listens: a case that reached the network would fail


# -- client options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": -3}, ValueError, "max_concurrency"),
        ({"max_concurrency": 2.5}, TypeError, "max_concurrency"),
        ({"max_concurrency": "10"}, TypeError, "max_concurrency"),
        ({"max_concurrency": True}, TypeError, "max_concurrency"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": math.nan}, ValueError, "timeout"),
        ({"timeout": math.inf}, ValueError, "timeout"),
        ({"timeout": "10"}, TypeError, "timeout"),
        ({"timeout": None}, TypeError, "timeout"),
        ({"base_url": "not a url"}, ValueError, "base_url"),
        ({"base_url": ""}, ValueError, "base_url"),
        ({"base_url": "ftp://connect.routee.net"}, ValueError, "base_url"),
        ({"base_url": "https://"}, ValueError, "base_url"),
        ({"base_url": "http://[::1"}, ValueError, "base_url"),
        ({"base_url": 5}, TypeError, "base_url"),
        ({"auth_url": "auth.routee.net/oauth/token"}, ValueError, "auth_url"),
        ({"credentials": "a-token-string"}, TypeError, "credentials"),
        ({"credentials": None}, TypeError, "credentials"),
        ({"retry": "fast"}, TypeError, "retry"),
        ({"retry": 3}, TypeError, "retry"),
        ({"forbidden_refresh_after": -1}, ValueError, "forbidden_refresh_after"),
        ({"forbidden_refresh_after": math.nan}, ValueError, "forbidden_refresh_after"),
    ],
    ids=lambda x: repr(x) if isinstance(x, dict) else "",
)
def test_client_options(options: dict[str, Any], error: type[Exception], names: str) -> None:
    options = {"credentials": TOKEN, **options}
    with pytest.raises(error, match=names):
        RouteeViberClient(**options)


def test_a_bad_url_is_not_echoed() -> None:
    """A URL may carry credentials: the error names the option, never the value."""
    with pytest.raises(ValueError, match="base_url") as caught:
        RouteeViberClient(credentials=TOKEN, base_url="ftp://user:s3cr3t-P4ss@host")
    assert "s3cr3t-P4ss" not in str(caught.value)


def test_good_client_options_are_accepted() -> None:
    RouteeViberClient(
        credentials=TOKEN,
        base_url="http://127.0.0.1:8080",
        auth_url="https://auth.example/oauth/token",
        max_concurrency=1,
        timeout=aiohttp.ClientTimeout(total=None, sock_read=5),
        forbidden_refresh_after=0,
        retry=RetryPolicy.disabled(),
    )


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"retry": "x"}, TypeError, "retry"),
    ],
)
def test_with_options(options: dict[str, Any], error: type[Exception], names: str) -> None:
    client = RouteeViberClient(credentials=TOKEN)
    with pytest.raises(error, match=names):
        client.with_options(**options)


def test_from_env_with_bad_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEE_ACCESS_TOKEN", "t")
    monkeypatch.setenv("ROUTEE_BASE_URL", "connect.routee.net")
    with pytest.raises(ValueError, match="base_url"):
        RouteeViberClient.from_env()
    monkeypatch.delenv("ROUTEE_ACCESS_TOKEN")
    monkeypatch.delenv("ROUTEE_BASE_URL")
    monkeypatch.delenv("ROUTEE_APPLICATION_ID", raising=False)
    with pytest.raises(ValueError, match="ROUTEE_APPLICATION_ID"):
        RouteeViberClient.from_env()


# -- retry policy and credentials ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "options", "error", "names"),
    [
        (RetryPolicy, {"max_attempts": 0}, ValueError, "max_attempts"),
        (RetryPolicy, {"max_attempts": 1.5}, TypeError, "max_attempts"),
        (RetryPolicy, {"max_attempts": "3"}, TypeError, "max_attempts"),
        (RetryPolicy, {"initial_backoff": -1}, ValueError, "initial_backoff"),
        (RetryPolicy, {"initial_backoff": math.nan}, ValueError, "initial_backoff"),
        (RetryPolicy, {"max_backoff": -0.1}, ValueError, "max_backoff"),
        (RetryPolicy, {"max_backoff": "8"}, TypeError, "max_backoff"),
        (RetryPolicy, {"max_retry_after": -1}, ValueError, "max_retry_after"),
        (RetryPolicy, {"deadline": -1}, ValueError, "deadline"),
        (RetryPolicy, {"deadline": 0}, ValueError, "deadline"),
        (RetryPolicy, {"deadline": "60"}, ValueError, "deadline"),
        (RetryPolicy, {"sleep_scale": -1}, ValueError, "sleep_scale"),
        (RetryPolicy, {"retry_ambiguous_sends": "no"}, TypeError, "retry_ambiguous_sends"),
        (RetryPolicy, {"budget": 500}, TypeError, "budget"),
        (RetryBudget, {"capacity": -1}, ValueError, "capacity"),
        (RetryBudget, {"retry_cost": 1.5}, TypeError, "retry_cost"),
        (RetryBudget, {"timeout_cost": -10}, ValueError, "timeout_cost"),
        (RetryBudget, {"success_refund": -1}, ValueError, "success_refund"),
    ],
    ids=lambda x: repr(x) if isinstance(x, dict) else getattr(x, "__name__", ""),
)
def test_retry_options(
    cls: type[Any], options: dict[str, Any], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=names):
        cls(**options)
    with pytest.raises(error, match=names):
        RetryPolicy.no_wait(**options) if cls is RetryPolicy else RetryBudget(**options)


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: ClientCredentials(123, "secret"), "application_id"),
        (lambda: ClientCredentials("app", None), "application_secret"),
        (lambda: StaticToken(b"bytes"), "value"),
    ],
)
def test_credentials(make: Any, names: str) -> None:
    with pytest.raises(TypeError, match=names):
        make()


# -- request models ---------------------------------------------------------------------------

TO = "+306912345678"


def _send(**changes: Any) -> SendMessage:
    fields: dict[str, Any] = {
        "sender_info_tracking_id": "sender",
        "to": TO,
        "template_id": "t",
        "template_lang": "en",
        "template_params": {"pin": "123456"},
    }
    return SendMessage(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"sender_info_tracking_id": " "}, "senderInfoTrackingId"),
        ({"sender_info_tracking_id": None}, "senderInfoTrackingId"),
        ({"to": "6912345678"}, "to"),
        ({"to": 306912345678}, "to"),
        ({"template_id": ""}, "templateId"),
        ({"template_lang": ""}, "templateLang"),
        ({"template_params": "pin=1"}, "templateParams"),
        ({"template_params": {"pin": "x" * 26}}, "pin"),
        ({"template_params": {"code": "see evil.com/x"}}, "code"),
        ({"template_params": {"file": "report.pdf"}}, "file"),
        ({"template_params": {"pin": ["1"]}}, "pin"),
        ({"template_params": {"pin": "1", 7: "x"}}, "templateParams"),
        ({"template_params": {"pin": math.nan}}, "pin"),
        ({"template_params": {"pin": -math.inf}}, "pin"),
        ({"template_params": {"pin": 2**64}}, "pin"),
        ({"template_params": {"code": "evil\uff0ecom"}}, "code"),
        ({"template_params": {"file": "test\u200d.pdf"}}, "file"),
        ({"template_params": {"pin": "\U0001f600" * 13}}, "pin"),
        ({"sender_info_tracking_id": "\u200b" * 25}, "senderInfoTrackingId"),
        ({"delivery_scope": "EVERYWHERE"}, "deliveryScope"),
        ({"seq": -1}, "seq"),
        ({"seq": 2**53}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"ttl": 2**64}, "ttl"),
        ({"callback_url": "http://example.com/cb"}, "callbackUrl"),
        ({"callback_url": "http://127.evil.com/cb"}, "callbackUrl"),
        ({"inbound_url": "ftp://x"}, "inboundUrl"),
    ],
    ids=repr,
)
def test_send_message_names_the_field(changes: dict[str, Any], names: str) -> None:
    with pytest.raises(ValidationError, match=names) as caught:
        _send(**changes).validate()
    assert len(caught.value.issues) == 1, caught.value.issues


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"label": "marketing"}, "label"),
        ({"delivery_scope": DeliveryScope("SOMEWHERE")}, "deliveryScope"),
        ({"template_lang": "english"}, "templateLang"),
        ({"template_params": {"codeValidityTime": "5"}}, "codeValidityTime"),
        ({"ttl": -5}, "ttl"),
        ({"to": "+0306912345678"}, "to"),
    ],
    ids=repr,
)
def test_legacy_otp_names_the_field(changes: dict[str, Any], names: str) -> None:
    fields: dict[str, Any] = {"sender_info_tracking_id": "sender", "to": TO, **changes}
    with pytest.raises(ValidationError, match=names):
        LegacyOtp(**fields).validate()


def _template(**changes: Any) -> CreateTemplate:
    fields: dict[str, Any] = {
        "category": TemplateCategory.OTP,
        "params": [TemplateParam("pin")],
        "locales": [TemplateLocale("en", "Code {{pin}}")],
        "var_example": [VarExample("pin", "123456")],
    }
    return CreateTemplate(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"category": "Marketing"}, "category"),
        ({"params": [TemplateParam("pin", "NUMBER")]}, "type TEXT"),
        ({"params": [TemplateParam("pin"), TemplateParam("pin")]}, "repeated"),
        ({"locales": []}, "locales"),
        ({"locales": [TemplateLocale("english", "Code {{pin}}")]}, "lang"),
        ({"locales": [TemplateLocale("en", "No pin here")]}, "pin"),
        ({"locales": [TemplateLocale("en", "Code {{pin}} {{other}}")]}, "other"),
        ({"var_example": []}, "varExample"),
        ({"callback_url": "http://example.com/m"}, "callbackUrl"),
        ({"moderation_notify_email": "nobody"}, "moderationNotifyEmail"),
    ],
    ids=repr,
)
def test_create_template_names_the_field(changes: dict[str, Any], names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        _template(**changes).validate()


@pytest.mark.parametrize("url", ["http://example.com/m", "example.com/m", 5, ""])
def test_template_callback_update_names_the_field(url: Any) -> None:
    issues = TemplateCallbackUpdate(url).issues()
    assert [code for code, _ in issues] == ["INVALID_CALLBACK_URL"]
    assert "callbackUrl" in issues[0].message


# -- resource arguments -----------------------------------------------------------------------


async def test_resource_arguments_are_checked_before_any_request() -> None:
    async with RouteeViberClient(
        credentials=TOKEN, base_url=CLOSED, retry=RetryPolicy.disabled()
    ) as client:
        for options, names in [
            ({"concurrency": 0}, "concurrency"),
            ({"concurrency": -1}, "concurrency"),
            ({"concurrency": 2.5}, "concurrency"),
            ({"concurrency": True}, "concurrency"),
            ({"rate_limit": 0}, "rate_limit"),
            ({"rate_limit": -5}, "rate_limit"),
            ({"rate_limit": math.nan}, "rate_limit"),
            ({"rate_limit": math.inf}, "rate_limit"),
        ]:
            with pytest.raises(ValidationError, match=names):
                _ = [o async for o in client.messages.send_many([_send()], **options)]
        calls = [
            (client.tracking.get(""), "trackingId"),
            (client.tracking.get(" "), "trackingId"),
            (client.templates.get(""), "templateId"),
            (client.templates.delete(" "), "templateId"),
            (client.templates.update_callback("", None), "templateId"),
            (client.templates.update_callback("t", "http://example.com/m"), "callbackUrl"),
            (client.templates.create(" ", _template()), "senderInfoTrackingId"),
            (client.templates.create("s", _template(locales=[])), "locales"),
            (client.messages.send(_send(to="123")), "to"),
            (client.messages.send(_send(template_params={"pin": math.nan})), "pin"),
            (client.messages.send(_send(template_params={"pin": "1", 7: "x"})), "templateParams"),
            (client.messages.send_otp(LegacyOtp("s", TO, ttl=0)), "ttl"),
            (anext(client.templates.list(page_size=0)), "pageSize"),
        ]
        for call, names in calls:
            with pytest.raises(ValidationError, match=names):
                await call


@pytest.mark.parametrize(
    ("options", "names"),
    [({"poll_interval": 0}, "poll_interval"), ({"poll_interval": -1}, "poll_interval"),
     ({"timeout": -1}, "timeout"), ({"max_poll_interval": -1}, "max_poll_interval")],
    ids=repr,
)  # fmt: skip
async def test_tracking_wait_options(options: dict[str, Any], names: str) -> None:
    async with (
        Sandbox(moderation_delay=None, seed=1) as sb,
        RouteeViberClient(
            credentials=sb.credentials, base_url=sb.base_url, auth_url=sb.auth_url
        ) as client,
    ):
        options = {"timeout": 0.2, "not_found_grace": 10, **options}
        with pytest.raises((ValueError, ValidationError), match=names):
            await client.tracking.wait("no-such-id", **options)


# -- webhook parsers --------------------------------------------------------------------------

DELIVERY = '{"trackingId": "t-1", "status": {"name": "DELIVERED"}}'
MODERATION = '{"templateId": "t-1", "templateStatus": "APPROVED"}'


@pytest.mark.parametrize(
    ("parse", "body", "names"),
    [
        (parse_delivery_callback, b"", "empty body"),
        (parse_delivery_callback, b"{", "malformed JSON"),
        (parse_delivery_callback, "[1, 2]", "JSON object"),
        (parse_delivery_callback, 42, "bytes, str or a mapping"),
        (parse_delivery_callback, None, "bytes, str or a mapping"),
        (parse_delivery_callback, DELIVERY.replace('"t-1"', "true"), "trackingId"),
        (parse_delivery_callback, DELIVERY.replace('"t-1"', '"  "'), "trackingId"),
        (parse_delivery_callback, '{"trackingId": "t"}', "status"),
        (parse_delivery_callback, DELIVERY.replace('"name"', '"nom"'), "status.name"),
        (parse_delivery_callback, DELIVERY[:-1] + ', "createdAt": "yesterday"}', "createdAt"),
        (parse_moderation_callback, MODERATION.replace('"APPROVED"', "1"), "templateStatus"),
        (parse_moderation_callback, '{"templateStatus": "APPROVED"}', "templateId"),
        (parse_moderation_callback, MODERATION[:-1] + ', "variables": "pin"}', "variables"),
        (parse_callback, '{"hello": "world"}', "neither a delivery"),
        (parse_callback, {"trackingId": "t"}, "status"),
    ],
    ids=lambda x: getattr(x, "__name__", None) or repr(x)[:30],
)
def test_webhook_parsers_name_the_field(parse: Any, body: Any, names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        parse(body)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Credentials for a server that is not there: a case that reaches the network exits 1."""
    for name in ("ROUTEE_APPLICATION_ID", "ROUTEE_APPLICATION_SECRET", "ROUTEE_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTEE_ACCESS_TOKEN", "token")
    monkeypatch.setenv("ROUTEE_BASE_URL", CLOSED)
    input_path = tmp_path / "in.csv"
    input_path.write_text(f"to,pin\n{TO},123456\n")
    return input_path


SEND = ["send", "--sender", "s", "--to", TO, "--template-id", "t", "--lang", "en"]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], "COMMAND"),
        (["frobnicate"], "frobnicate"),
        (["send-many", "IN", "--template-id", "t", "--lang", "en"], "--sender"),
        (["send-many", "IN", "--sender", "s", "--template-id", "t", "--lang", "en",
          "--concurrency", "abc"], "--concurrency"),
        (["send-many", "IN", "--sender", "s", "--template-id", "t", "--lang", "en",
          "--concurrency", "0"], "--concurrency"),
        (["send-many", "IN", "--sender", "s", "--template-id", "t", "--lang", "en",
          "--rate", "0"], "--rate"),
        (["send-many", "IN", "--sender", "s", "--template-id", "t", "--lang", "en",
          "--rate", "nan"], "--rate"),
        (["send-many", "IN", "--sender", "s", "--template-id", "t", "--lang", "en",
          "--rate", "inf"], "--rate"),
        ([*SEND[:4], "123"], "to"),
        ([*SEND, "--ttl", "0"], "ttl"),
        ([*SEND, "--ttl", "soon"], "--ttl"),
        ([*SEND, "--seq", "-1"], "seq"),
        ([*SEND, "--param", "novalue"], "--param"),
        ([*SEND, "--delivery-scope", "EVERYWHERE"], "--delivery-scope"),
        ([*SEND, "--param", "pin=1", "--callback-url", "ftp://x"], "callbackUrl"),
        (["track", ""], "trackingId"),
        (["track", "x", "--timeout", "soon"], "--timeout"),
        (["templates"], "ACTION"),
        (["templates", "list", "--page-size", "0"], "--page-size"),
        (["templates", "create", "/nonexistent/template.json", "--sender", "s"], "cannot read"),
        (["templates", "create", "IN", "--sender", "s"], "not valid JSON"),
        (["templates", "set-callback", "t"], "--remove"),
        (["templates", "set-callback", "t", "http://example.com/m"], "callbackUrl"),
        (["demo", "--count", "many"], "--count"),
        (["sandbox", "--port", "http"], "--port"),
    ],
    ids=lambda argv: " ".join(argv)[:60] if isinstance(argv, list) else "",
)  # fmt: skip
def test_command_line_exits_2_naming_the_flag(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], names: str
) -> None:
    argv = [str(cli_env) if arg == "IN" else arg for arg in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert names in err


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ROUTEE_ACCESS_TOKEN": None}, "ROUTEE_APPLICATION_ID"),
        ({"ROUTEE_BASE_URL": "connect.routee.net"}, "base_url"),
        ({"ROUTEE_AUTH_URL": "ftp://auth"}, "auth_url"),
    ],
    ids=repr,
)
def test_command_line_bad_environment(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str | None],
    names: str,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    assert main(["templates", "list"]) == 2
    assert names in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "names"),
    [(["demo", "--count", "-5"], "--count"), (["sandbox", "--port", "99999"], "--port")],
    ids=["demo --count -5", "sandbox --port 99999"],
)
def test_command_line_range_checks(
    capsys: pytest.CaptureFixture[str], argv: list[str], names: str
) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    except OverflowError:
        code = 1
    assert code == 2
    assert names in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["journal", "output"])
async def test_send_many_unwritable_journal_or_output(tmp_path: Path, flag: str) -> None:
    async with Sandbox(moderation_delay=None, seed=1) as sb:
        template_id = await otp_template(sb)
        input_path = tmp_path / "in.csv"
        input_path.write_text(f"to,pin,minutes\n{recipient(1)},{pin_for(1)},5\n")
        job = SendMany(
            input=input_path,
            sender=sb.sender_id,
            template_id=template_id,
            lang="en",
            **{flag: tmp_path / "missing-dir" / "file"},  # type: ignore[arg-type]
        )

        def factory(**options: Any) -> RouteeViberClient:
            return RouteeViberClient(
                credentials=sb.credentials, base_url=sb.base_url, auth_url=sb.auth_url, **options
            )

        err = _Buffer()
        assert await job.run(factory, stderr=err) == 2
        assert f"--{flag}" in err.text
        assert sb.messages == []
        await asyncio.sleep(0)


class _Buffer:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass
