"""``routee-viber demo``: the main job end to end, with no credentials.

Starts the sandbox and a local callback receiver, creates an OTP template and waits for its
approval, fans out ``count`` OTPs with a progress bar, collects the delivery callbacks and prints
a summary table.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from typing import IO

from aiohttp import web

from .._client import RouteeViberClient
from .._enums import DeliveryStatus, TemplateCategory
from .._requests import CreateTemplate, SendMessage, TemplateLocale, TemplateParam, VarExample
from .._responses import DeliveryCallback, ModerationCallback, Template
from .._seq import next_seq
from ..integrations.aiohttp import webhook_routes
from ._progress import make_progress

__all__ = ["run_demo"]

_TEMPLATE = CreateTemplate(
    category=TemplateCategory.OTP,
    params=[TemplateParam("pin"), TemplateParam("minutes")],
    locales=[TemplateLocale("en", "Your demo code is {{pin}}. It expires in {{minutes}} minutes.")],
    var_example=[VarExample("pin", "123456"), VarExample("minutes", "5")],
)


class _Receiver:
    """Collects delivery and moderation callbacks on a loopback aiohttp server."""

    def __init__(self) -> None:
        self.final: dict[str, DeliveryStatus] = {}
        self.callbacks = 0
        self.approved: dict[str, asyncio.Event] = {}
        self.changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def on_delivery(self, callback: DeliveryCallback) -> None:
        self.callbacks += 1
        if callback.status.name.is_final:
            self.final.setdefault(callback.tracking_id, callback.status.name)
            self.changed.set()

    async def on_moderation(self, callback: ModerationCallback) -> None:
        self.approved.setdefault(callback.template_id, asyncio.Event()).set()

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            webhook_routes(on_delivery=self.on_delivery, on_moderation=self.on_moderation)
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _approved_template(
    client: RouteeViberClient, sender: str, receiver: _Receiver
) -> Template:
    created = await client.templates.create(
        sender,
        CreateTemplate(
            category=_TEMPLATE.category,
            params=_TEMPLATE.params,
            locales=_TEMPLATE.locales,
            var_example=_TEMPLATE.var_example,
            callback_url=f"{receiver.base_url}/routee/moderation",
        ),
    )
    event = receiver.approved.setdefault(created.template_id, asyncio.Event())
    await asyncio.wait_for(event.wait(), timeout=30)
    template = await client.templates.get(created.template_id)
    if not template.is_approved:
        raise RuntimeError(f"the sandbox did not approve the demo template: {template.status}")
    return template


async def run_demo(count: int = 1000, concurrency: int = 100, stream: IO[str] | None = None) -> int:
    """Run the demo; returns the exit code (0 when every OTP was sent and delivered)."""
    from ..sandbox import Sandbox

    out = stream if stream is not None else sys.stderr
    receiver = _Receiver()
    await receiver.start()
    try:
        async with (
            Sandbox(moderation_delay=0.2, delivery_delay=0.2) as sandbox,
            RouteeViberClient(
                credentials=sandbox.credentials,
                base_url=sandbox.base_url,
                auth_url=sandbox.auth_url,
                max_concurrency=concurrency,
            ) as client,
        ):
            print(f"sandbox at {sandbox.base_url}; callbacks to {receiver.base_url}", file=out)
            template = await _approved_template(client, sandbox.sender_id, receiver)
            print(f"template {template.template_id} approved", file=out)
            started_at: dict[int, float] = {}
            latencies: list[float] = []

            def messages() -> Iterator[SendMessage]:
                for i in range(count):
                    seq = next_seq()
                    started_at[seq] = time.perf_counter()
                    yield SendMessage(
                        sender_info_tracking_id=sandbox.sender_id,
                        to=f"+3069{i:08d}",
                        template_id=template.template_id,
                        template_lang="en",
                        template_params={"pin": f"{secrets.randbelow(10**6):06d}", "minutes": "5"},
                        callback_url=f"{receiver.base_url}/routee/delivery",
                        seq=seq,
                    )

            sent: set[str] = set()
            failed_sends = 0
            began = time.perf_counter()
            with make_progress(count, "sending OTPs", out) as progress:
                async for outcome in client.messages.send_many(messages(), template=template):
                    seq = outcome.request.seq
                    assert seq is not None, "every message here carries its own seq"
                    latencies.append(time.perf_counter() - started_at.pop(seq))
                    if outcome.result is not None:
                        sent.add(outcome.result.tracking_id)
                    else:
                        failed_sends += 1
                    progress.advance(outcome.ok)
            send_seconds = time.perf_counter() - began
            delivered, undelivered = await _await_deliveries(receiver, sent, out)
            _print_summary(
                out,
                [
                    ("OTPs", str(count)),
                    ("sent (accepted)", str(len(sent))),
                    ("send failures", str(failed_sends)),
                    ("delivered", str(delivered)),
                    ("not delivered (failed/expired)", str(undelivered)),
                    ("no final callback yet", str(len(sent) - delivered - undelivered)),
                    ("delivery callbacks received", str(receiver.callbacks)),
                    ("sends per second", f"{count / send_seconds:.0f}"),
                    ("send latency p50", f"{_percentile(latencies, 50) * 1000:.1f} ms"),
                    ("send latency p95", f"{_percentile(latencies, 95) * 1000:.1f} ms"),
                ],
            )
            ok = len(sent) == count and delivered == count
            return 0 if ok else 1
    finally:
        await receiver.close()


async def _await_deliveries(
    receiver: _Receiver, sent: set[str], out: IO[str], patience: float = 30.0
) -> tuple[int, int]:
    """Wait for a final delivery callback of every accepted send; returns (delivered, not)."""
    deadline = time.monotonic() + patience
    with make_progress(len(sent), "delivery callbacks", out) as progress:
        while True:
            statuses = [receiver.final[tid] for tid in sent if tid in receiver.final]
            delivered = sum(1 for status in statuses if status.is_success)
            progress.update(ok=delivered, failed=len(statuses) - delivered)
            remaining = deadline - time.monotonic()
            if len(statuses) == len(sent) or remaining <= 0:
                return delivered, len(statuses) - delivered
            receiver.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.changed.wait(), timeout=min(1.0, remaining))


def _percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _print_summary(out: IO[str], rows: list[tuple[str, str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(name) for name, _ in rows)
        print("\nsummary", file=out)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}", file=out)
        return
    table = Table(title="routee-viber demo")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console(file=out).print(table)
