"""``routee-viber demo``: the main job end to end, with no credentials.

Starts the sandbox and a local callback receiver, creates an OTP template and waits for its
approval, fans out ``count`` OTPs with a progress bar, collects the delivery callbacks for as
long as they keep arriving and prints a summary table that says what its figures mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING

from aiohttp import web

from .._client import RouteeViberClient
from .._enums import DeliveryStatus, TemplateCategory
from .._requests import CreateTemplate, SendMessage
from .._responses import DeliveryCallback, ModerationCallback, Template
from .._seq import next_seq
from .._template_parts import TemplateLocale, TemplateParam, VarExample
from ..integrations.aiohttp import webhook_routes
from ._progress import make_progress
from ._timeout import with_timeout

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = ["QUIET_PERIOD", "run_demo", "wait_while_arriving"]

#: How long the demo waits for the next delivery callback before it stops waiting (seconds).
#: Generous: the sandbox retries a failed callback after 0.5 s and times one out after 5 s.
QUIET_PERIOD = 15.0

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
        self.by_status: Counter[DeliveryStatus] = Counter()
        self.delivered = 0
        self.approved: dict[str, asyncio.Event] = {}
        self.changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # The callbacks' shared secret, as a path segment: even on loopback the demo shows the
        # recommended set-up, and its receiver does not warn of an unprotected endpoint.
        self._token = secrets.token_urlsafe(16)

    @property
    def delivery_url(self) -> str:
        """The ``callbackUrl`` of the demo's sends."""
        return f"{self.base_url}/routee/delivery/{self._token}"

    @property
    def moderation_url(self) -> str:
        """The ``callbackUrl`` of the demo's template."""
        return f"{self.base_url}/routee/moderation/{self._token}"

    async def on_delivery(self, callback: DeliveryCallback) -> None:
        self.callbacks += 1
        self.by_status[callback.status.name] += 1
        if callback.status.name.is_final and callback.tracking_id not in self.final:
            self.final[callback.tracking_id] = callback.status.name
            self.delivered += callback.status.name.is_success
        self.changed.set()  # any callback: the deliveries are still moving

    async def wait_for_change(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return on the next callback, or after ``timeout`` seconds."""
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout=timeout)

    async def on_moderation(self, callback: ModerationCallback) -> None:
        self.approved.setdefault(callback.template_id, asyncio.Event()).set()

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            webhook_routes(
                on_delivery=self.on_delivery,
                on_moderation=self.on_moderation,
                secret=self._token,
                delivery_path="/routee/delivery/{token}",
                moderation_path="/routee/moderation/{token}",
            )
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
            callback_url=receiver.moderation_url,
        ),
    )
    event = receiver.approved.setdefault(created.template_id, asyncio.Event())
    await asyncio.wait_for(event.wait(), timeout=30)
    template = await client.templates.get(created.template_id)
    if not template.is_approved:
        raise RuntimeError(f"the sandbox did not approve the demo template: {template.status}")
    return template


async def run_demo(
    count: int = 1000,
    concurrency: int = 100,
    stream: IO[str] | None = None,
    request_timeout: float | None = None,
    ui: bool = False,
) -> int:
    """Run the demo; returns the exit code (0 when every OTP was sent and delivered).

    ``request_timeout`` (``--timeout``) bounds each of the client's calls, retries included.
    ``ui`` (``--ui``): after the summary, keep the sandbox running with its web inbox, whose
    URL is printed, until cancelled (Ctrl+C).
    """
    from ..sandbox import Sandbox

    out = stream if stream is not None else sys.stderr
    receiver = _Receiver()
    await receiver.start()
    try:
        async with (
            Sandbox(moderation_delay=0.2, delivery_delay=0.2, ui=ui) as sandbox,
            RouteeViberClient(
                **with_timeout(
                    {
                        "credentials": sandbox.credentials,
                        "base_url": sandbox.base_url,
                        "auth_url": sandbox.auth_url,
                        "max_concurrency": concurrency,
                    },
                    request_timeout,
                )
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
                        callback_url=receiver.delivery_url,
                        seq=seq,
                    )

            sent: set[str] = set()
            failed_sends = 0
            began, cpu_began = time.perf_counter(), time.process_time()
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
            cpu_seconds = time.process_time() - cpu_began
            cpu_per_send = cpu_seconds / count
            delivered, undelivered = await _await_deliveries(receiver, sent, out)
            pending = len(sent) - delivered - undelivered
            rows = [
                ("OTPs", str(count)),
                ("sent (accepted)", str(len(sent))),
                ("send failures", str(failed_sends)),
                ("delivered", str(delivered)),
                ("not delivered (failed/expired)", str(undelivered)),
                ("no final callback", str(pending)),
                ("delivery callbacks received", str(receiver.callbacks)),
                ("sends per second", f"{count / send_seconds:.0f}"),
                ("CPU per send, this process", f"{cpu_per_send * 1000:.2f} ms"),
                ("send latency p50", f"{_percentile(latencies, 50) * 1000:.1f} ms"),
                ("send latency p95", f"{_percentile(latencies, 95) * 1000:.1f} ms"),
            ]
            core_share = cpu_seconds / send_seconds if send_seconds else 0.0
            _print_summary(out, rows, _notes(receiver.by_status, pending, core_share))
            ok = len(sent) == count and delivered == count
            if ui:
                await _keep_serving(sandbox, out)
            return 0 if ok else 1
    finally:
        await receiver.close()


async def _keep_serving(sandbox: Sandbox, out: IO[str]) -> None:
    """Serve on until cancelled, after saying where the inbox is (once the last callbacks
    are in it)."""
    with contextlib.suppress(TimeoutError):
        await sandbox.wait_idle(timeout=QUIET_PERIOD)
    url = sandbox.inbox_url
    print(f"inbox: {url} (the sandbox keeps running; Ctrl+C stops it)", file=out, flush=True)
    await asyncio.Event().wait()


def _notes(by_status: Counter[DeliveryStatus], pending: int, core_share: float = 1.0) -> list[str]:
    """What the summary's figures mean (``core_share``: CPU seconds per second while sending)."""
    notes = []
    if by_status:
        parts = " + ".join(f"{number} {status}" for status, number in by_status.items())
        notes.append(
            f"delivery callbacks received = {parts}: one callback per status change of each"
            " OTP (QUEUED -> SENT -> final status)."
        )
    if pending:
        notes.append(
            f"no final callback: {pending} OTPs; no callback arrived for {QUIET_PERIOD:.0f} s,"
            " so the demo stopped waiting."
        )
    rate = (
        "sends per second: lower than the README's benchmark, where the server runs in another"
        " process. Here the sandbox (and its callbacks, and their receiver) runs in this"
        " process and shares its CPU with the client: the CPU per send counts all of them."
        f" While sending, this process used {core_share:.0%} of one core"
    )
    if core_share < 0.8:
        rate += "; the rest of the time it waited (on a busy machine, for the CPU)"
    notes.append(rate + ".")
    return notes


async def _await_deliveries(receiver: _Receiver, sent: set[str], out: IO[str]) -> tuple[int, int]:
    """Wait for final delivery callbacks while they arrive; returns (delivered, not)."""

    def all_final() -> bool:  # cheap until the count is reached: it runs on every callback
        return len(receiver.final) >= len(sent) and all(tid in receiver.final for tid in sent)

    with make_progress(len(sent), "delivery callbacks", out) as progress:

        def show() -> None:
            finals = len(receiver.final)
            progress.update(ok=receiver.delivered, failed=finals - receiver.delivered)

        await wait_while_arriving(
            received=lambda: receiver.callbacks,
            done=all_final,
            wait_for_change=receiver.wait_for_change,
            quiet=QUIET_PERIOD,
            on_change=show,
        )
    statuses = [receiver.final[tid] for tid in sent if tid in receiver.final]
    delivered = sum(1 for status in statuses if status.is_success)
    return delivered, len(statuses) - delivered


async def wait_while_arriving(
    *,
    received: Callable[[], int],
    done: Callable[[], bool],
    wait_for_change: Callable[[float], Awaitable[None]],
    quiet: float,
    clock: Callable[[], float] = time.monotonic,
    on_change: Callable[[], None] = lambda: None,
) -> bool:
    """Wait until ``done()``, for as long as ``received()`` keeps growing.

    Gives up once ``quiet`` seconds passed without a new arrival, however long the whole wait
    took: a large run keeps the wait going, a stalled one ends it. ``wait_for_change(timeout)``
    returns on the next arrival or after ``timeout``. True when ``done()``, False on giving up.
    """
    count, last_arrival = received(), clock()
    on_change()
    while not done():
        now = clock()
        if received() != count:
            count, last_arrival = received(), now
        remaining = quiet - (now - last_arrival)
        if remaining <= 0:
            return False
        await wait_for_change(min(1.0, remaining))
        on_change()
    return True


def _percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _print_summary(out: IO[str], rows: list[tuple[str, str]], notes: list[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(name) for name, _ in rows)
        print("\nsummary", file=out)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}", file=out)
    else:
        table = Table(title="routee-viber demo")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for name, value in rows:
            table.add_row(name, value)
        Console(file=out).print(table)
    for note in notes:
        print(f"- {note}", file=out)
