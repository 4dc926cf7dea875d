"""POSTs on keep-alive connections that the server already closed.

aiohttp offers no public way to see that a pooled connection was closed by the server before
reusing it, nor a typed sign that a request was never written: such a POST is maybe sent.

The server is a real aiohttp server in a thread and loop of its own. While the client's loop is
blocked, the test has the server close the connections it served (as its keep-alive timeout
would): the server's FIN then waits, unprocessed, in the client's socket, exactly like a busy
client that reuses a connection the server has just given up on. The close is asked for, not
waited out, so a loaded machine cannot reorder it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from routee_viber_async._auth import StaticToken
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import TransportError, routee_status_error
from routee_viber_async._transport import Transport

POLICY = RetryPolicy.no_wait(retry_ambiguous_sends=False)


class ThreadedServer:
    """An aiohttp server in a thread of its own that closes its connections when told to."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._served: list[asyncio.BaseTransport] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        if request.transport is not None:
            self._served.append(request.transport)
        return web.json_response({"ok": True, "n": len(self.bodies)})

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/m", self._handle)
        runner = web.AppRunner(app, keepalive_timeout=3600)  # closed only when told to
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(5)

    def close_connections(self) -> None:
        """Close every connection served, from the server's side; return once it is done.

        Called from the client's loop without awaiting, so that loop processes nothing meanwhile
        and the FIN waits in its socket.
        """
        assert self._loop is not None
        closed = threading.Event()

        def close() -> None:
            for transport in self._served:
                transport.close()
            closed.set()

        self._loop.call_soon_threadsafe(close)
        assert closed.wait(30)

    def stop(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    srv = ThreadedServer()
    srv.start()
    yield srv
    srv.stop()


def _transport(url: str, session: aiohttp.ClientSession | None, policy: RetryPolicy) -> Transport:
    return Transport(
        token_provider=StaticToken("t"),
        base_url=url,
        auth_url="unused",
        make_status_error=routee_status_error,
        retry=policy,
        session=session,
    )


@pytest.mark.parametrize("own_session", [True, False], ids=["own pool", "caller's session"])
async def test_a_post_into_a_connection_the_server_closed_is_unknown_and_not_repeated(
    server: ThreadedServer, own_session: bool
) -> None:
    """The server's FIN waits unprocessed in our socket; the POST is written into the dead
    connection. Nothing public tells whether the server got it: at most once, it is not
    repeated, and its outcome is unknown."""
    async with aiohttp.ClientSession() as session:
        transport = _transport(server.url, None if own_session else session, POLICY)
        await transport.request("POST", "/m", body=b'{"n":1}')
        server.close_connections()
        with pytest.raises(TransportError) as caught:
            await transport.request("POST", "/m", body=b'{"n":2}')
        await transport.close()
    assert caught.value.request_sent is True
    assert caught.value.attempts == 1
    assert server.bodies == [b'{"n":1}']


async def test_post_found_closing_before_writing_is_unknown_and_not_repeated(
    server: ThreadedServer,
) -> None:
    """The connection is handed out, then the loop processes the FIN before the write: aiohttp
    refuses to write. Its only sign is an error text, which we do not read: the POST counts as
    maybe sent, and with ambiguous sends off it is not repeated.

    A trace hook yields to the loop right after the pooled connection is handed out, which is
    the interleaving a busy loop produces. The body is written at once from Python 3.12 on
    (an eager task) and one loop turn later before, hence one more turn on 3.12+.
    """
    turns = 1 if sys.version_info < (3, 12) else 2

    async def yield_after_reuse(*_: object) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(yield_after_reuse)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        transport = _transport(server.url, session, POLICY)
        await transport.request("POST", "/m", body=b'{"n":1}')
        server.close_connections()
        with pytest.raises(TransportError) as caught:
            await transport.request("POST", "/m", body=b'{"n":2}')
        await transport.close()
    assert caught.value.request_sent is True
    assert server.bodies == [b'{"n":1}']


async def test_at_least_once_repeats_a_post_lost_to_a_closed_connection(
    server: ThreadedServer,
) -> None:
    at_least_once = RetryPolicy.no_wait(retry_ambiguous_sends=True)
    async with _transport(server.url, None, at_least_once) as transport:
        await transport.request("POST", "/m", body=b'{"n":1}')
        server.close_connections()
        reply = await transport.request("POST", "/m", body=b'{"n":2}')
    assert reply.data == {"ok": True, "n": 2}
    assert reply.attempts == 2
    assert reply.data["n"] == len(server.bodies)
