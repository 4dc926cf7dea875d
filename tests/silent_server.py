"""A loopback port that takes connections and never answers (a hung API, a black hole)."""

from __future__ import annotations

import asyncio
import socket


class SilentServer:
    """A listening socket that nothing accepts from: the kernel completes each connection and
    buffers what the client writes, and no answer ever comes.

    No asyncio server is involved: its ``wait_closed()`` waits, since Python 3.12.1, for every
    connection it accepted, and one accepted just as the test ended could hang the exit for
    good, or be left open and warn later. Closing the socket resets the connections waiting on
    it; nothing stays open.
    """

    def __init__(self) -> None:
        self.accepted = asyncio.Event()  # set once a connection is waiting
        self._socket: socket.socket | None = None

    async def __aenter__(self) -> SilentServer:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
        self._socket = listener
        # The listening socket turns readable when a connection is waiting to be accepted.
        asyncio.get_running_loop().add_reader(listener.fileno(), self._on_connection)
        return self

    def _on_connection(self) -> None:
        assert self._socket is not None
        asyncio.get_running_loop().remove_reader(self._socket.fileno())
        self.accepted.set()

    async def __aexit__(self, *exc: object) -> None:
        assert self._socket is not None
        asyncio.get_running_loop().remove_reader(self._socket.fileno())
        self._socket.close()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._socket is not None
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """Its ``http://`` base URL."""
        return f"http://127.0.0.1:{self.port}"
