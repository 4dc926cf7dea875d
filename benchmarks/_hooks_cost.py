"""Benchmark: what the observability hooks cost per send over HTTPS (issue 21).

Contenders in interleaved rounds, in one child process trusting the benchmark's CA (as
:mod:`benchmarks._https` does):

- ``raw``: the raw loop;
- ``none``: the SDK without hooks;
- ``otel``: the SDK with ``OpenTelemetryHooks`` on the OpenTelemetry SDK: a ``TracerProvider``
  whose spans go to a no-op exporter through a ``BatchSpanProcessor`` (as OpenTelemetry advises
  for production; its queue large enough that no span is dropped) and a ``MeterProvider`` with
  an in-memory reader. Every span and metric is really made and handed on, the export thread's
  CPU counted too; the exporter keeps nothing, so that a round's spans do not pile up for the
  garbage collector;
- ``otel-sampled``: the same with one call in ten traced (``ParentBased(TraceIdRatioBased(0.1))``,
  as a busy service samples); the metrics are all still recorded;
- ``prometheus``: the SDK with ``PrometheusHooks`` (its own registry).

Each round sends the same ``n`` messages at concurrency ``C``; the order of the contenders
rotates every round, so that drift falls on all alike. The figures are the median CPU per send
of each contender, and the median of the per-round ratios to the raw loop.

``python -m benchmarks._hooks_cost PORT N ROUNDS C`` is the child's entry point.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from statistics import quantiles
from typing import Any

import attrs

from ._common import Server, cpu_seconds, median, message, payload, quiet, warm_allocator
from ._https import run_tls_child

__all__ = ["HooksCostResult", "run_hooks_cost"]

CONTENDERS = ("raw", "none", "otel", "otel-sampled", "prometheus")


@attrs.frozen
class HooksCostResult:
    """Median µs of client CPU per send by contender, and ratios to the raw loop."""

    n: int
    rounds: int
    concurrency: int
    us: dict[str, float]
    ratio: dict[str, float]
    ratio_q1: dict[str, float]
    ratio_q3: dict[str, float]

    def lines(self) -> list[str]:
        raw = self.us["raw"]
        out = [f"raw loop {raw:.1f} µs"]
        for name in CONTENDERS[1:]:
            out.append(
                f"SDK, hooks={name}: {self.us[name]:.1f} µs, {self.ratio[name]:.3f}x raw "
                f"({self.ratio_q1[name]:.2f}-{self.ratio_q3[name]:.2f})"
            )
        return out


def run_hooks_cost(
    tls_server: Server, ca_file: str, *, n: int, rounds: int, concurrency: int
) -> HooksCostResult:
    """Run the child against ``tls_server`` and return its figures."""
    answer = run_tls_child(
        "benchmarks._hooks_cost", ca_file, tls_server.port, n, rounds, concurrency
    )
    return HooksCostResult(**answer)


# -- in the child ------------------------------------------------------------------------------


def _hooks(name: str) -> list[object]:
    if name.startswith("otel"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from routee_viber_async.integrations.opentelemetry import OpenTelemetryHooks

        class NoOpExporter(SpanExporter):
            def __init__(self) -> None:
                self.exported = 0

            def export(self, spans: Any) -> SpanExportResult:
                self.exported += len(spans)
                return SpanExportResult.SUCCESS

        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        # otel-sampled: one call in ten traced, as a busy service would sample.
        sampler = ParentBased(TraceIdRatioBased(0.1)) if name == "otel-sampled" else None
        tracer_provider = TracerProvider(sampler=sampler)
        exporter = NoOpExporter()
        tracer_provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=1 << 20, schedule_delay_millis=100)
        )
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        return [OpenTelemetryHooks(tracer_provider, meter_provider)]
    if name == "prometheus":
        from prometheus_client import CollectorRegistry

        from routee_viber_async.integrations.prometheus import PrometheusHooks

        return [PrometheusHooks(CollectorRegistry())]
    return []


async def _child(port: int, n: int, rounds: int, concurrency: int) -> HooksCostResult:
    from routee_viber_async import ClientCredentials, RouteeViberClient

    from ._raw import RawClient
    from ._server import APP_ID, APP_SECRET

    server = Server(None, port, "https")
    messages = [message(i) for i in range(n)]
    payloads = [payload(i) for i in range(n)]
    clients = {
        name: RouteeViberClient(
            credentials=ClientCredentials(APP_ID, APP_SECRET),
            base_url=server.base_url,
            auth_url=server.auth_url,
            max_concurrency=concurrency,
            hooks=_hooks(name),
        )
        for name in CONTENDERS[1:]
    }
    async with RawClient(
        send_url=server.send_url, auth_url=server.auth_url, concurrency=concurrency
    ) as raw:
        rounds_of: dict[str, Callable[[], Awaitable[object]]] = {
            "raw": lambda: asyncio.gather(*[raw.send(p) for p in payloads]),
        }
        for name, client in clients.items():
            send = client.messages.send
            rounds_of[name] = lambda send=send: asyncio.gather(*[send(m) for m in messages])
        try:
            for run in rounds_of.values():  # warm-up: connections, token, hot paths
                await run()
            us: dict[str, list[float]] = {name: [] for name in CONTENDERS}
            for r in range(rounds):
                shift = r % len(CONTENDERS)
                order = CONTENDERS[shift:] + CONTENDERS[:shift]
                for name in order:
                    with quiet():
                        cpu0 = cpu_seconds()
                        await rounds_of[name]()
                        us[name].append((cpu_seconds() - cpu0) / n * 1e6)
        finally:
            for client in clients.values():
                await client.close()
    ratios = {
        name: [s / r for s, r in zip(us[name], us["raw"], strict=True)] for name in CONTENDERS
    }

    def quartile(values: list[float], index: int) -> float:
        return quantiles(values, n=4)[index] if len(values) > 1 else values[0]

    return HooksCostResult(
        n=n,
        rounds=rounds,
        concurrency=concurrency,
        us={name: median(values) for name, values in us.items()},
        ratio={name: median(values) for name, values in ratios.items()},
        ratio_q1={name: quartile(values, 0) for name, values in ratios.items()},
        ratio_q3={name: quartile(values, 2) for name, values in ratios.items()},
    )


def main() -> None:
    warm_allocator()
    port, n, rounds, concurrency = map(int, sys.argv[1:])
    result = asyncio.run(_child(port, n, rounds, concurrency))
    print(json.dumps(attrs.asdict(result)))


if __name__ == "__main__":
    main()
