"""Helpers of the observability tests: reading what the in-memory OpenTelemetry SDK kept."""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from routee_viber_async import SendMessage, Template
from routee_viber_async.integrations.opentelemetry import OpenTelemetryHooks
from routee_viber_async.sandbox import Sandbox

TO = "+306912345678"
PIN = "482910"


class Telemetry(NamedTuple):
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def hooks(self) -> OpenTelemetryHooks:
        return OpenTelemetryHooks(self.tracer_provider, self.meter_provider)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def children(self, parent: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
        """The spans whose parent is ``parent`` (named ``name``), in start order."""
        found = [
            span
            for span in self.spans()
            if span.parent is not None
            and span.parent.span_id == parent.context.span_id
            and (name is None or span.name == name)
        ]
        return sorted(found, key=lambda span: span.start_time or 0)

    def points(self, metric: str) -> list[Any]:
        """The data points of ``metric`` (every attribute set)."""
        data = self.reader.get_metrics_data()
        found = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend(item.data.data_points)
        return found

    def sends(self) -> dict[str, int]:
        """``routee.client.sends`` by outcome."""
        return {
            str(p.attributes["outcome"]): int(p.value) for p in self.points("routee.client.sends")
        }


def otp(sandbox: Sandbox, template: Template, pin: str = PIN, **options: Any) -> SendMessage:
    return SendMessage(sandbox.sender_id, TO, template.template_id, "en", {"pin": pin}, **options)
