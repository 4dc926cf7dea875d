"""No secret is reachable from an error (issue 17 #2 and #3).

A raw asyncio loopback server writes what aiohttp cannot parse (a malformed status line, a
header over 8 KiB): aiohttp's ``ClientResponseError`` then holds the request's headers,
``Authorization`` included. The SDK's error must chain neither it nor anything holding it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from secret_graph import assert_no_secret_reachable
from transport_helpers import APP_ID, APP_SECRET, FakeRoutee, MakeTransport, Step, reply

from routee_viber_async._auth import ClientCredentials, StaticToken
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import (
    AuthenticationError,
    ResponseTooLargeError,
    RouteeError,
    ServerError,
    TransportError,
    ValidationError,
    outcome_unknown,
    routee_status_error,
)
from routee_viber_async._transport import DEFAULT_MAX_RESPONSE_SIZE, Transport

TOKEN = "tok-VERY-SECRET-bearer-0123456789"
PIN = "482910"
BASIC = base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
CREDENTIAL_SECRETS = (APP_SECRET, BASIC, f"{APP_ID}:{APP_SECRET}")

BAD_STATUS_LINE = b"HTTP/1.1 2OO NOT-A-STATUS\r\nContent-Length: 0\r\n\r\n"
HUGE_HEADER = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 9000 + b"\r\nContent-Length: 2\r\n\r\n{}"

RawServer = Callable[[bytes], Awaitable[str]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """``await raw_server(answer)``: the base URL of a loopback server that reads a request
    (up to its blank line and body) and writes ``answer`` bytes, whatever they are."""
    servers: list[asyncio.Server] = []

    async def start(answer: bytes) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _error_of(transport: Transport, method: str = "GET") -> RouteeError:
    try:
        body = b'{"templateParams": {"pin": "%s"}}' % PIN.encode() if method == "POST" else None
        await transport.request(method, "/viber/x?q=1", body=body)
    except RouteeError as exc:
        return exc
    finally:
        await transport.close()
    raise AssertionError("no error")


@pytest.mark.parametrize("answer", [BAD_STATUS_LINE, HUGE_HEADER], ids=["status line", "header"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_no_token_reachable_from_an_unparseable_api_answer(
    raw_server: RawServer, answer: bytes, method: str
) -> None:
    base_url = await raw_server(answer)
    transport = Transport(
        make_status_error=routee_status_error,
        token_provider=StaticToken(TOKEN),
        base_url=base_url,
        auth_url=base_url + "/oauth/token",
        retry=RetryPolicy.no_wait(max_attempts=2),
    )
    error = await _error_of(transport, method)
    assert isinstance(error, TransportError)
    assert error.__cause__ is not None  # a summary: the type and message are still told
    assert "ClientResponseError" in str(error.__cause__) or "Bad" in str(error.__cause__)
    assert_no_secret_reachable(error, [TOKEN, PIN])


@pytest.mark.parametrize("answer", [BAD_STATUS_LINE, HUGE_HEADER], ids=["status line", "header"])
async def test_no_credential_reachable_from_an_unparseable_token_answer(
    raw_server: RawServer, answer: bytes
) -> None:
    auth_url = await raw_server(answer) + "/oauth/token"
    transport = Transport(
        make_status_error=routee_status_error,
        token_provider=ClientCredentials(APP_ID, APP_SECRET),
        base_url="http://127.0.0.1:9/api",
        auth_url=auth_url,
        retry=RetryPolicy.no_wait(max_attempts=2),
    )
    error = await _error_of(transport, "POST")
    assert isinstance(error, TransportError)
    assert_no_secret_reachable(error, [*CREDENTIAL_SECRETS, PIN])


async def test_a_400_quoting_the_pin_keeps_it_nowhere(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    text = f"Parameter pin value {PIN} is invalid"
    routee.script(
        reply(
            400,
            {
                "code": "400019029",
                "developerMessage": text,
                "validationIssues": [{"code": "INVALID", "message": text}],
                "echo": {"value": PIN},
            },
        )
    )
    transport = make_transport()
    with pytest.raises(ValidationError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}", secrets=(PIN,))
    error = caught.value
    assert "Parameter pin value *** is invalid" in str(error)
    assert error.developer_message == "Parameter pin value *** is invalid"
    assert [i.message for i in error.issues] == ["Parameter pin value *** is invalid"]
    assert_no_secret_reachable(error, [PIN])


async def test_a_5xx_page_echoing_the_request_and_token_keeps_neither(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=2))
    await transport.request("GET", "/warm-up")  # the client now holds a token
    token = routee.issued[-1]
    page = f"<html>WAF blocked: pin={PIN}&Authorization: Bearer {token}</html>"
    routee.script(reply(502, text=page), reply(502, text=page))
    with pytest.raises(ServerError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}", secrets=(PIN,))
    assert "WAF blocked" in caught.value.body
    assert_no_secret_reachable(caught.value, [PIN, token])


async def test_an_unreadable_token_answer_keeps_no_body(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    leaked = "tok-in-an-unexpected-shape-9876"
    routee.auth_script.append(reply(200, {"data": {"token": leaked}}))
    transport = make_transport()
    with pytest.raises(AuthenticationError) as caught:
        await transport.request("GET", "/x")
    assert caught.value.body is None
    assert_no_secret_reachable(caught.value, [leaked, *CREDENTIAL_SECRETS])


@pytest.mark.parametrize(
    "step",
    [reply(500, {"error": "server_error"}), reply(200, text="<html>not json</html>")],
    ids=["500", "garbage"],
)
async def test_a_failure_to_get_the_token_is_a_certain_failure(
    routee: FakeRoutee, make_transport: MakeTransport, step: Step
) -> None:
    """17 #5: nothing reached the API, so the send certainly failed."""
    routee.auth_script.extend([step] * 4)
    transport = make_transport(retry=RetryPolicy.no_wait(max_attempts=2))
    with pytest.raises(RouteeError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}")
    assert not outcome_unknown(caught.value)
    assert caught.value.attempts == 0
    assert routee.api_hits == 0


async def test_a_token_timeout_is_a_certain_failure(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.auth_gate = asyncio.Event()  # the auth server never answers
    transport = make_transport(timeout=0.2, retry=RetryPolicy.disabled())
    with pytest.raises(TransportError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}")
    assert not outcome_unknown(caught.value)
    assert routee.api_hits == 0


async def test_a_token_failure_after_an_ambiguous_attempt_stays_unknown(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    transport = make_transport(
        retry=RetryPolicy.no_wait(max_attempts=3, retry_ambiguous_sends=True)
    )
    await transport.request("GET", "/warm-up")

    async def accepted_then_token_revoked(request: web.Request) -> web.StreamResponse:
        routee.revoke_all()  # the retry's token is refused: it must fetch one, which fails
        routee.auth_script.extend([reply(500)] * 4)
        return web.Response(status=500)

    routee.script(accepted_then_token_revoked)
    with pytest.raises(RouteeError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}")
    assert caught.value.earlier_attempt_unknown
    assert outcome_unknown(caught.value)


# -- the answer-size cap (17 #12) ---------------------------------------------------------------


def _streamed(size: int) -> Step:
    """A JSON answer (``{}`` after blanks) of about ``size`` bytes sent chunked (no
    Content-Length), 64 KiB at a time."""

    async def step(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < size:
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write(b"{}")
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        return resp

    return step


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_answer_over_the_cap_is_a_typed_error_and_unknown_for_a_send(
    routee: FakeRoutee, make_transport: MakeTransport, chunked: bool
) -> None:
    limit = 100_000
    big = _streamed(5 * limit) if chunked else reply(200, text=" " * (5 * limit))
    routee.script(big)
    transport = make_transport(max_response_size=limit)
    with pytest.raises(ResponseTooLargeError) as caught:
        await transport.request("POST", "/viber/m", body=b"{}")
    assert caught.value.limit == limit
    assert caught.value.attempts == 1
    assert outcome_unknown(caught.value)
    assert routee.api_hits == 1  # not retried
    assert (await transport.request("GET", "/after")).data == {"ok": True, "n": 2}


async def test_an_answer_within_the_cap_is_read_whole(
    routee: FakeRoutee, make_transport: MakeTransport
) -> None:
    routee.script(_streamed(3 * 65536), reply(200, {"x": "y" * 5000}))
    transport = make_transport(max_response_size=4 * 65536)
    assert (await transport.request("GET", "/a")).data == {}
    assert (await transport.request("GET", "/b")).data == {"x": "y" * 5000}


def test_the_default_cap_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_RESPONSE_SIZE == 1024 * 1024
    with pytest.raises(ValueError, match="max_response_size"):
        Transport(
            make_status_error=routee_status_error,
            token_provider=StaticToken(TOKEN),
            base_url="http://127.0.0.1:9",
            auth_url="http://127.0.0.1:9/t",
            max_response_size=0,
        )


def _sdk_frame_locals(error: BaseException) -> list[tuple[str, str]]:
    """``(where, repr)`` of every local of the SDK's frames in ``error``'s traceback."""
    found = []
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if "routee_viber_async" in frame.f_code.co_filename:
            for name, value in frame.f_locals.items():
                found.append((f"{frame.f_code.co_name}:{name}", repr(value)))
        tb = tb.tb_next
    return found


@pytest.mark.parametrize("method", ["GET", "POST"])  # GET is retried: the retry's frames too
@pytest.mark.parametrize("endpoint", ["api", "token"])
async def test_no_secret_in_the_sdk_frames_an_error_tracker_records(
    raw_server: RawServer, endpoint: str, method: str
) -> None:
    """Error trackers record each traceback frame with its locals (Sentry does by default)."""
    bad = await raw_server(BAD_STATUS_LINE)
    api = bad if endpoint == "api" else "http://127.0.0.1:9"
    provider = StaticToken(TOKEN) if endpoint == "api" else ClientCredentials(APP_ID, APP_SECRET)
    transport = Transport(
        make_status_error=routee_status_error,
        token_provider=provider,
        base_url=api,
        auth_url=bad + "/oauth/token",
        retry=RetryPolicy.no_wait(max_attempts=2),
    )
    error = await _error_of(transport, method)
    frames = _sdk_frame_locals(error)
    assert frames
    for where, text in frames:
        for secret in (TOKEN, *CREDENTIAL_SECRETS):
            assert secret not in text, f"{secret!r} in the local {where}: {text[:200]}"
