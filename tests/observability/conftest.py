"""Fixtures of the observability tests: an OpenTelemetry SDK in memory, sandbox clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from observability_helpers import Telemetry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from routee_viber_async import RetryPolicy, RouteeViberClient, Template
from routee_viber_async.sandbox import Sandbox

MakeClient = Callable[..., RouteeViberClient]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Providers of the OpenTelemetry SDK that keep every span and metric in memory."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, meter_provider, exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def sandbox(routee_sandbox: Sandbox) -> Sandbox:
    return routee_sandbox


@pytest.fixture
def template(routee_template: Template) -> Template:
    """An approved OTP template of the sandbox's sender, with one parameter: ``pin``."""
    return routee_template


@pytest.fixture
async def make_client(sandbox: Sandbox) -> AsyncIterator[MakeClient]:
    """``make_client(**options)``: a client of the sandbox, retrying without waits."""
    made: list[RouteeViberClient] = []

    def make(**options: Any) -> RouteeViberClient:
        options.setdefault("retry", RetryPolicy.no_wait())
        client = RouteeViberClient(
            credentials=sandbox.credentials,
            base_url=sandbox.base_url,
            auth_url=sandbox.auth_url,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
