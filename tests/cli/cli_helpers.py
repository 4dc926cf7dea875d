"""A loopback gate in front of the sandbox's API, to hold a CLI run mid-way for as long as a
test needs (instead of slowing every reply and hoping the run is still going)."""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp
from aiohttp import web

SEND_PATH = "/viber/transactional/messages"

# Hop-by-hop and framing headers: aiohttp sets its own for each leg.
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# The answer's headers the SDK reads.
_ANSWER_HEADERS = frozenset({"content-type", "retry-after"})


class SendGate:
    """A proxy to ``target`` that lets the first ``allow`` sends through and holds every later
    one until :meth:`release`. Other requests always pass. ``url`` is its base URL.

    A held send whose caller goes away is dropped, never forwarded (as Routee never sees a
    request that was not written in full).
    """

    def __init__(self, target: str, *, allow: int) -> None:
        self.target = target.rstrip("/")
        self.allow = allow
        self.sends = 0
        self.held = 0
        self.url = ""
        self._released = asyncio.Event()
        self._held_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def release(self) -> None:
        """Let the held sends, and every later one, through."""
        self._released.set()

    async def wait_held(self, count: int) -> None:
        """Wait (up to a minute) until ``count`` sends are held at once."""
        async with asyncio.timeout(60):
            while self.held < count:
                self._held_changed.clear()
                await self._held_changed.wait()

    async def __aenter__(self) -> SendGate:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession()
        # handler_cancellation: a send held for a caller that left is cancelled, not forwarded.
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        assert self._runner is not None
        assert self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _hold(self) -> None:
        self.held += 1
        self._held_changed.set()
        try:
            await self._released.wait()
        finally:
            self.held -= 1
            self._held_changed.set()

    async def _forward(self, request: web.Request) -> web.Response:
        if request.method == "POST" and request.path == SEND_PATH:
            self.sends += 1
            if self.sends > self.allow and not self._released.is_set():
                await self._hold()
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() in _ANSWER_HEADERS}
        return web.Response(status=answer.status, body=body, headers=kept)


async def read_stderr_until(process: asyncio.subprocess.Process, text: str) -> str:
    """Read ``process``'s stderr (up to a minute) to the line that contains ``text``."""
    assert process.stderr is not None
    read: list[str] = []
    async with asyncio.timeout(60):
        while not read or text not in read[-1]:
            line = await process.stderr.readline()
            assert line, f"stderr ended without {text!r}: {''.join(read)}"
            read.append(line.decode())
    return "".join(read)
