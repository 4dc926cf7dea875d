"""Benchmark 6: CPU per send and peak RSS over HTTPS on loopback, the SDK against the raw loop.

Routee serves HTTPS, so this is what a send costs in production. A throw-away CA (``trustme``)
signs the benchmark server's certificate, and every client process trusts that CA through
``SSL_CERT_FILE``: both contenders keep their default SSL context (the SDK's
``ssl_context=True``, the raw loop's plain ``TCPConnector``) and verify the certificate as they
would Routee's. aiohttp builds its default contexts when it is imported, so the variable must
be set before the client process starts: every client here is a child process.

- CPU: one child runs both contenders in interleaved rounds, exactly as benchmark 1
  (:func:`benchmarks._cpu.run_cpu`), against the HTTPS server.
- Peak RSS: one child per contender and round (SDK, raw, SDK, raw, ...), each sending ``n``
  messages at concurrency ``C`` in one ``gather`` with its own session, as a round of
  benchmark 1 does; the figure is that process's peak-RSS mark (``VmHWM``), medians over the
  rounds. The same children against the plain-HTTP server show what TLS adds.

``python -m benchmarks._https cpu|rss ...`` is the child's entry point (see :func:`main`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ._common import Server, median, message, payload, peak_rss, warm_allocator
from ._cpu import CpuResult, run_cpu

__all__ = ["HttpsResult", "RssResult", "run_https", "tls_files"]

_MIB = 1024 * 1024


@attrs.frozen
class TlsFiles:
    """The CA that clients trust, and the server's key and certificate chain (PEM files)."""

    ca: str
    chain: str


@contextmanager
def tls_files() -> Iterator[TlsFiles]:
    """A fresh CA and a certificate for ``127.0.0.1`` signed by it, in a temporary folder."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="routee-bench-tls-") as folder:
        files = TlsFiles(ca=str(Path(folder, "ca.pem")), chain=str(Path(folder, "server.pem")))
        ca.cert_pem.write_to_path(files.ca)
        cert.private_key_and_cert_chain_pem.write_to_path(files.chain)
        yield files


@attrs.frozen
class RssResult:
    """Peak RSS (MiB) of the children of one contender, one per round."""

    scheme: str
    mode: str
    peaks_mib: tuple[float, ...]

    @property
    def peak_mib(self) -> float:
        return median(list(self.peaks_mib))


@attrs.frozen
class HttpsResult:
    """Benchmark 6: the CPU rounds over HTTPS and the peak RSS of each contender."""

    cpu: CpuResult
    rss: tuple[RssResult, ...]


def _child(ca_file: str, *args: object) -> dict[str, Any]:
    """Run ``python -m benchmarks._https *args`` trusting ``ca_file``; its JSON answer."""
    return run_tls_child("benchmarks._https", ca_file, *args)


def run_tls_child(module: str, ca_file: str, *args: object) -> dict[str, Any]:
    """Run ``python -m MODULE *args`` trusting ``ca_file`` (through ``SSL_CERT_FILE``, so its
    clients keep their default SSL context); the JSON object its last line prints."""
    env = {**os.environ, "SSL_CERT_FILE": ca_file}
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child {module} {args} failed:\n{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def run_https(
    tls_server: Server,
    plain_server: Server,
    ca_file: str,
    *,
    n: int,
    rounds: int,
    rss_rounds: int,
    concurrency: int,
) -> HttpsResult:
    """Run the CPU rounds over HTTPS, then the RSS children over HTTPS and plain HTTP."""
    answer = _child(ca_file, "cpu", tls_server.port, n, rounds, concurrency)
    cpu = CpuResult(**{k: tuple(v) if isinstance(v, list) else v for k, v in answer.items()})
    rss = []
    for server in (tls_server, plain_server):
        scheme = server.base_url.split(":", 1)[0]
        peaks: dict[str, list[float]] = {"sdk": [], "raw": []}
        for r in range(rss_rounds):
            for mode in ("sdk", "raw") if r % 2 == 0 else ("raw", "sdk"):
                answer = _child(ca_file, "rss", scheme, server.port, mode, n, concurrency)
                peaks[mode].append(float(answer["peak_mib"]))
        rss += [RssResult(scheme, mode, tuple(values)) for mode, values in peaks.items()]
    return HttpsResult(cpu=cpu, rss=tuple(rss))


# -- in the child ------------------------------------------------------------------------------


async def _rss(scheme: str, port: int, mode: str, n: int, concurrency: int) -> float:
    from routee_viber_async import ClientCredentials, RouteeViberClient

    from ._raw import RawClient
    from ._server import APP_ID, APP_SECRET

    server = Server(None, port, scheme)
    if mode == "sdk":
        messages = [message(i) for i in range(n)]
        async with RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=server.base_url,
            auth_url=server.auth_url,
            max_concurrency=concurrency,
        ) as client:
            await asyncio.gather(*[client.messages.send(m) for m in messages])
    else:
        payloads = [payload(i) for i in range(n)]
        async with RawClient(
            send_url=server.send_url, auth_url=server.auth_url, concurrency=concurrency
        ) as raw:
            await asyncio.gather(*[raw.send(p) for p in payloads])
    return peak_rss() / _MIB


def main() -> None:
    """``cpu PORT N ROUNDS C`` or ``rss SCHEME PORT sdk|raw N C``: one JSON line on stdout."""
    warm_allocator()  # as every benchmark process does (see there)
    command, *args = sys.argv[1:]
    if command == "cpu":
        port, n, rounds, concurrency = map(int, args)
        server = Server(None, port, "https")
        result = asyncio.run(run_cpu(server, n=n, rounds=rounds, concurrency=concurrency))
        print(json.dumps(attrs.asdict(result)))
    elif command == "rss":
        scheme, port_text, mode, n_text, concurrency_text = args
        peak = asyncio.run(_rss(scheme, int(port_text), mode, int(n_text), int(concurrency_text)))
        print(json.dumps({"peak_mib": peak}))
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
