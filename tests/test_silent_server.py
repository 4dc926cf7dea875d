"""The never-answering test server exits however late a connection came in."""

from __future__ import annotations

import asyncio
import socket

import pytest
from silent_server import SilentServer


# With an asyncio server, a connection the loop had accepted but not handed to its handler
# when the server exited hung the exit for good (Python 3.12.1 and later): that falls a few
# turns of the loop after the connect, so every turn from 0 to 7 is tried.
@pytest.mark.parametrize("turns", range(8))
async def test_the_exit_never_waits_on_a_connection_however_late(turns: int) -> None:
    server = SilentServer()
    await server.__aenter__()
    with socket.create_connection(("127.0.0.1", server.port)):
        for _ in range(turns):
            await asyncio.sleep(0)
        await asyncio.wait_for(server.__aexit__(None, None, None), timeout=10)


async def test_it_takes_a_connection_and_never_answers() -> None:
    async with SilentServer() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(server.accepted.wait(), timeout=10)
    # Its exit reset the connection: not one byte of an answer came before.
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
