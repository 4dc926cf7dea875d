"""What every benchmark shares: the server process, the workload, and the measurements."""

from __future__ import annotations

import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson

from routee_viber_async import DeliveryScope, SendMessage

__all__ = [
    "SENDER",
    "TEMPLATE_ID",
    "Server",
    "admin",
    "cpu_seconds",
    "current_rss",
    "generate_messages",
    "generate_payloads",
    "median",
    "message",
    "payload",
    "peak_rss",
    "quiet",
    "reset_peak_rss",
    "server_process",
    "warm_allocator",
]

SENDER = "bench-sender"
TEMPLATE_ID = "bench-otp-template"


class Server:
    """The benchmark server running in its own process (see :mod:`benchmarks._server`)."""

    def __init__(
        self, process: subprocess.Popen[bytes] | None, port: int, scheme: str = "http"
    ) -> None:
        self.process = process
        self.port = port
        self.base_url = f"{scheme}://127.0.0.1:{port}"
        self.flaky_base_url = f"{self.base_url}/flaky"
        self.auth_url = f"{self.base_url}/oauth/token"
        self.send_url = f"{self.base_url}/viber/transactional/messages"
        self.flaky_send_url = f"{self.flaky_base_url}/viber/transactional/messages"


@contextmanager
def server_process(tls_chain: str | None = None) -> Iterator[Server]:
    """Start the server in a child process (HTTPS with the key and certificate chain
    ``tls_chain``); stop it (by closing its stdin) on exit."""
    tls = ["--tls", tls_chain] if tls_chain is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server", *tls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError("the benchmark server did not start")
        yield Server(process, int(line[1]), "https" if tls_chain is not None else "http")
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(10)


async def admin(session: aiohttp.ClientSession, server: Server, op: str, **query: Any) -> Any:
    """Call one of the server's ``/admin`` controls and return its JSON."""
    method = "GET" if op == "stats" else "POST"
    params = {k: str(v) for k, v in query.items()}
    async with session.request(method, f"{server.base_url}/admin/{op}", params=params) as resp:
        resp.raise_for_status()
        return orjson.loads(await resp.read())


def message(i: int) -> SendMessage:
    """The ``i``-th message of the workload: an OTP-category template send, like most traffic."""
    return SendMessage(
        sender_info_tracking_id=SENDER,
        to=f"+3069{i % 100_000_000:08d}",
        template_id=TEMPLATE_ID,
        template_lang="en",
        template_params={"pin": f"{i % 1_000_000:06d}", "minutes": "5"},
        delivery_scope=DeliveryScope.PRIMARY_DEVICE,
    )


def payload(i: int) -> dict[str, Any]:
    """The same send as :func:`message`, as the dict a hand-written loop would build.

    It carries a ``seq`` like the SDK's body does, so that both put the same bytes on the wire.
    """
    return {
        "senderInfoTrackingId": SENDER,
        "to": f"+3069{i % 100_000_000:08d}",
        "templateId": TEMPLATE_ID,
        "templateLang": "en",
        "templateParams": {"pin": f"{i % 1_000_000:06d}", "minutes": "5"},
        "deliveryScope": "PRIMARY_DEVICE",
        "seq": 1_700_000_000_000_000 + i,
    }


def generate_messages(n: int) -> Iterator[SendMessage]:
    """``n`` messages, made one at a time (never a list)."""
    for i in range(n):
        yield message(i)


def generate_payloads(n: int) -> Iterator[dict[str, Any]]:
    """``n`` raw payloads, made one at a time (never a list)."""
    for i in range(n):
        yield payload(i)


def warm_allocator() -> None:
    """Free one large block, as any process that ever held a big buffer has: glibc then raises
    its mmap threshold to that size (1 MiB) and its trim threshold to twice that, for good.

    Every benchmark process calls this first. asyncio reads a socket into a fresh 256 KiB
    buffer: below the threshold it comes from the heap, at glibc's initial 128 KiB it is an
    ``mmap`` (then an ``mremap`` and a ``munmap``, about 13 µs of system time per answer).
    Whether a process had already raised its threshold depended on its history, a coin that
    moved the raw loop's CPU per send by 10-20 % from one child process to the next (the SDK
    reads 64 KiB at a time and never tossed it). Raised this way, glibc keeps its own tuning
    (``MALLOC_MMAP_THRESHOLD_`` would switch it off and leave the trim threshold at 128 KiB,
    so that the heap shrinks and grows again around every read).
    """
    block = bytearray(1024 * 1024)
    del block


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all threads."""
    return time.process_time()


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss() -> int:
    """This process's resident set size now, in bytes."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: the peak is the best we have
        return peak_rss()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False when unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """Peak resident set size in bytes (since :func:`reset_peak_rss` where supported)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


@contextmanager
def quiet() -> Iterator[None]:
    """Collect garbage first, so that one round does not pay for the previous one's."""
    gc.collect()
    yield
