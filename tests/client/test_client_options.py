"""Constructor options: ``ssl=`` against a real loopback HTTPS server, and ``help()``'s text.

The HTTPS server's certificate is issued by a throwaway CA made in the test (trustme): a client
trusts it only when told to through ``ssl=``, for the token fetch and the API alike.
"""

from __future__ import annotations

import inspect
import pydoc
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import trustme
from aiohttp import web

from routee_viber_async import (
    ClientCredentials,
    RetryPolicy,
    RouteeViberClient,
    SendMessage,
    StaticToken,
    TransportError,
)

MESSAGE = SendMessage("sender-1", "+306912345678", "tpl-1", "en", {"pin": "482910"})


@attrs.define
class HttpsServer:
    """A loopback HTTPS stand-in for Routee: the token endpoint and the send endpoint."""

    base_url: str
    ca_file: Path
    ca: trustme.CA
    seen: list[str] = attrs.field(factory=list)  # the endpoints reached, in order

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/oauth/token"


@pytest.fixture
async def https_server(tmp_path: Path) -> AsyncIterator[HttpsServer]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen: list[str] = []

    async def token(request: web.Request) -> web.Response:
        seen.append("token")
        return web.json_response({"access_token": "tok-1", "expires_in": 3600})

    async def send(request: web.Request) -> web.Response:
        seen.append("send")
        body = await request.json()
        return web.json_response({"trackingId": "trk-1", "seq": body["seq"], "to": body["to"]})

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/viber/transactional/messages", send)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield HttpsServer(f"https://127.0.0.1:{port}", ca_file, ca, seen)
    finally:
        await runner.cleanup()


def _client(server: HttpsServer, credentials: Any, **options: Any) -> RouteeViberClient:
    return RouteeViberClient(
        credentials=credentials,
        base_url=server.base_url,
        auth_url=server.auth_url,
        retry=RetryPolicy.disabled(),
        **options,
    )


def _trusting_context(server: HttpsServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    server.ca.configure_trust(context)
    return context


TRUSTS = {
    "path as str": lambda server: str(server.ca_file),
    "path as Path": lambda server: server.ca_file,
    "SSLContext": _trusting_context,
}


@pytest.mark.parametrize("trust", TRUSTS.values(), ids=TRUSTS.keys())
async def test_ssl_trusts_a_private_ca_for_the_token_fetch_and_the_api(
    https_server: HttpsServer, trust: Any
) -> None:
    credentials = ClientCredentials("app-id", "app-secret")
    async with _client(https_server, credentials, ssl=trust(https_server)) as client:
        result = await client.messages.send(MESSAGE)
    assert result.tracking_id == "trk-1"
    assert https_server.seen == ["token", "send"]  # both over TLS, both verified


@pytest.mark.parametrize(
    "credentials", [ClientCredentials("app-id", "app-secret"), StaticToken("tok-1")], ids=repr
)
async def test_a_default_client_refuses_the_private_ca(
    https_server: HttpsServer, credentials: Any
) -> None:
    async with _client(https_server, credentials) as client:
        with pytest.raises(TransportError) as caught:
            await client.messages.send(MESSAGE)
    assert "certificate" in str(caught.value).lower()
    assert https_server.seen == []  # the handshake failed: no request reached the server


async def test_an_ssl_context_is_used_as_given(https_server: HttpsServer) -> None:
    """An SSLContext that trusts another CA is not second-guessed: the send fails."""
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)
    async with _client(https_server, StaticToken("tok-1"), ssl=other) as client:
        with pytest.raises(TransportError):
            await client.messages.send(MESSAGE)
    assert https_server.seen == []


async def test_ssl_false_skips_verification_on_loopback(https_server: HttpsServer) -> None:
    async with _client(https_server, StaticToken("tok-1"), ssl=False) as client:
        result = await client.messages.send(MESSAGE)
    assert result.tracking_id == "trk-1"


@pytest.mark.parametrize(
    "urls",
    [
        {"base_url": "https://connect.routee.net"},
        {"auth_url": "https://auth.routee.net/oauth/token", "base_url": "https://127.0.0.1:1"},
        {"base_url": "https://127.evil.com", "auth_url": "https://localhost/oauth/token"},
    ],
    ids=repr,
)
def test_ssl_false_is_refused_beyond_loopback(urls: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="ssl=False"):
        RouteeViberClient(credentials=StaticToken("t"), ssl=False, **urls)


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (5, TypeError, "ssl must be an ssl.SSLContext"),
        (None, TypeError, "ssl must be an ssl.SSLContext"),
        (b"ca.pem", TypeError, "ssl must be an ssl.SSLContext"),
        ("/nonexistent/ca.pem", ValueError, "ssl: cannot load CA certificates"),
        (Path("/"), ValueError, "ssl: cannot load CA certificates"),  # a directory
    ],
    ids=repr,
)
def test_bad_ssl_values_are_refused_at_construction(
    value: Any, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        RouteeViberClient(credentials=StaticToken("t"), ssl=value)


def test_a_file_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="ssl: cannot load CA certificates"):
        RouteeViberClient(credentials=StaticToken("t"), ssl=junk)


async def test_ssl_with_a_session_of_yours_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="session"):
            RouteeViberClient(
                credentials=StaticToken("t"), session=session, ssl=ssl.create_default_context()
            )
        # The default (True) leaves the caller's session alone.
        await RouteeViberClient(credentials=StaticToken("t"), session=session).close()


# -- help(RouteeViberClient) documents every parameter and its default ----------------------


def test_the_class_docstring_documents_every_constructor_parameter() -> None:
    text = pydoc.render_doc(RouteeViberClient, renderer=pydoc.plaintext)
    doc = inspect.getdoc(RouteeViberClient)
    assert doc is not None
    parameters = inspect.signature(RouteeViberClient.__init__).parameters
    names = [name for name in parameters if name != "self"]
    assert names  # the loop below checks something
    for name in names:
        assert name in text, f"help(RouteeViberClient) does not mention {name}"
        default = parameters[name].default
        if default is inspect.Parameter.empty:
            assert f"{name} (required)" in doc
        elif isinstance(default, str):
            assert f'{name} = ``"{default}"``' in doc, name
        else:
            assert f"{name} = ``{default!r}``" in doc, name


def test_the_class_docstring_states_the_default_retry_policy() -> None:
    doc = inspect.getdoc(RouteeViberClient)
    assert doc is not None
    policy = RetryPolicy()
    for field in ("max_attempts", "initial_backoff", "max_backoff", "max_retry_after"):
        assert f"{field}={getattr(policy, field):g}" in doc, field
    assert policy.deadline is not None
    assert f"deadline={policy.deadline:g}" in doc
