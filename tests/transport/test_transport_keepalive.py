"""POSTs on keep-alive connections that the server already closed.

The server is a real aiohttp server that closes idle keep-alive connections after 20 ms. It runs
in its own thread and loop, so that the test can block the client's loop (``time.sleep``) past
that timeout: the server's FIN then waits, unprocessed, in the client's socket, exactly like a
busy client that reuses a connection the server has just given up on.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from routee_viber_async._auth import StaticToken
from routee_viber_async._config import RetryPolicy
from routee_viber_async._errors import TransportError
from routee_viber_async._transport import Transport

IDLE_TIMEOUT = 0.02
BLOCK = 0.1  # five times the server's idle timeout
POLICY = RetryPolicy.no_wait(retry_ambiguous_sends=False)


class ThreadedServer:
    """An aiohttp server with a short keep-alive timeout, in a thread of its own."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        return web.json_response({"ok": True, "n": len(self.bodies)})

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/m", self._handle)
        runner = web.AppRunner(app, keepalive_timeout=IDLE_TIMEOUT)
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


def _block_the_loop() -> None:
    # Deliberately blocking: the server's FIN must stay unprocessed in our socket.
    time.sleep(BLOCK)


async def test_dead_pooled_connection_is_never_written_to(server: ThreadedServer) -> None:
    """Our own pool checks a reused connection first: the POST goes out once, on a live one."""
    async with Transport(
        token_provider=StaticToken("t"), base_url=server.url, auth_url="unused", retry=POLICY
    ) as transport:
        await transport.request("POST", "/m", body=b'{"n":1}')
        _block_the_loop()
        data, attempts = await transport.request_counted("POST", "/m", body=b'{"n":2}')
    assert data == {"ok": True, "n": 2}
    assert attempts == 1
    assert server.bodies == [b'{"n":1}', b'{"n":2}']


async def test_without_the_check_the_failure_is_ambiguous_and_not_repeated(
    server: ThreadedServer,
) -> None:
    """Control: a plain aiohttp session writes into the dead connection; the POST is lost,
    aiohttp cannot tell whether the server got it, and with ambiguous sends off we do not
    repeat it."""
    async with aiohttp.ClientSession() as session:
        transport = Transport(
            token_provider=StaticToken("t"),
            base_url=server.url,
            auth_url="unused",
            retry=POLICY,
            session=session,
        )
        await transport.request("POST", "/m", body=b'{"n":1}')
        _block_the_loop()
        with pytest.raises(TransportError) as caught:
            await transport.request("POST", "/m", body=b'{"n":2}')
        await transport.close()
    assert caught.value.request_sent is True
    assert caught.value.attempts == 1
    assert server.bodies == [b'{"n":1}']


async def test_post_found_closed_before_writing_is_retried(server: ThreadedServer) -> None:
    """The connection is handed out, then the loop processes the FIN before the write: aiohttp
    refuses to write ("Cannot write to closing transport"), nothing left, so the POST is
    retried although ambiguous sends are off.

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
        transport = Transport(
            token_provider=StaticToken("t"),
            base_url=server.url,
            auth_url="unused",
            retry=POLICY,
            session=session,
        )
        await transport.request("POST", "/m", body=b'{"n":1}')
        _block_the_loop()
        data, attempts = await transport.request_counted("POST", "/m", body=b'{"n":2}')
        await transport.close()
    assert data == {"ok": True, "n": 2}
    assert attempts == 2
    assert server.bodies == [b'{"n":1}', b'{"n":2}']
