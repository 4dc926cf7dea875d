"""No secret in anything the hooks export: a fan-out with both hook sets on, scanned whole."""

from __future__ import annotations

import base64
import logging
from typing import Any

import aiohttp
import pytest
from conftest import MakeClient
from observability_helpers import Telemetry
from prometheus_client import CollectorRegistry

from routee_viber_async import (
    CreateTemplate,
    SendMessage,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async.integrations.prometheus import PrometheusHooks, serve_metrics
from routee_viber_async.pytest_plugin import approved_template
from routee_viber_async.sandbox import Sandbox

CALLBACK_TOKEN = "CbTok3nZ9x"
COUNT = 24


def pin_of(i: int) -> str:
    """A pin no number, seq or id can contain by chance."""
    return f"P{i:05d}Q"


def name_of(i: int) -> str:
    return f"Nm{i:04d}Zz"


def exported_text(telemetry: Telemetry) -> list[str]:
    """Every string the OpenTelemetry SDK kept: span names, attributes, events, links, status
    descriptions, metric names, data point attributes and exemplars."""
    found: list[str] = []

    def add(attributes: Any) -> None:
        for key, value in dict(attributes or {}).items():
            found.append(f"{key}={value}")

    for span in telemetry.spans():
        found.append(span.name)
        found.append(str(span.status.description))
        add(span.attributes)
        for event in span.events:
            found.append(event.name)
            add(event.attributes)
        for link in span.links:
            add(link.attributes)
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.append(metric.name)
                for point in metric.data.data_points:
                    add(point.attributes)
                    for exemplar in getattr(point, "exemplars", None) or ():
                        add(exemplar.filtered_attributes)
                        found.append(str(exemplar.value))
    return found


async def test_a_fan_out_with_both_hook_sets_exports_no_secret(
    sandbox: Sandbox,
    make_client: MakeClient,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    client = make_client(
        hooks=[telemetry.hooks(), PrometheusHooks(registry)], forbidden_refresh_after=0
    )
    definition = CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin"), TemplateParam("name")],
        [TemplateLocale("en", "Hi {{name}}, your code is {{pin}}.")],
        [VarExample("pin", "123456"), VarExample("name", "Alex")],
    )
    template = await approved_template(client, sandbox, definition)
    first_token = client._transport.tokens.token
    assert first_token is not None
    callback = f"http://127.0.0.1:9/callbacks?token={CALLBACK_TOKEN}"
    messages = [
        SendMessage(
            sandbox.sender_id,
            f"+3069{i:08d}",
            template.template_id,
            "en",
            {"pin": pin_of(i), "name": name_of(i)},
            callback_url=callback,
        )
        for i in range(COUNT)
    ]
    # Retries, a refused token (a replay and a new token) and an ambiguous failure on the way.
    sandbox.inject_fault("service_unavailable", times=2)
    sandbox.inject_fault("token_expiry")
    sandbox.inject_fault("server_error")
    tracer = telemetry.tracer_provider.get_tracer("test")
    with (
        caplog.at_level(logging.DEBUG, logger="routee_viber_async"),
        tracer.start_as_current_span("fan-out"),
    ):
        outcomes = [o async for o in client.messages.send_many(messages, concurrency=4)]
    assert len(outcomes) == COUNT
    assert sum(o.ok for o in outcomes) >= COUNT - 1
    last_token = client._transport.tokens.token
    assert last_token is not None
    assert last_token.value != first_token.value  # the refused token was replaced
    async with (
        serve_metrics(0, registry=registry) as server,
        aiohttp.ClientSession() as http,
        http.get(server.url) as resp,
    ):
        prometheus_text = await resp.text()

    credentials = sandbox.credentials
    basic = base64.b64encode(
        f"{credentials.application_id}:{credentials.application_secret}".encode()
    ).decode()
    secrets = {
        "access token": first_token.value,
        "new access token": last_token.value,
        "application secret": credentials.application_secret,
        "basic credentials": basic,
        "callback token": CALLBACK_TOKEN,
    }
    for i in range(COUNT):
        secrets[f"pin {i}"] = pin_of(i)
        secrets[f"name {i}"] = name_of(i)
    otel_text = exported_text(telemetry)
    # The client's records (the sandbox, standing in for Routee, logs what it received).
    client_logs = "\n".join(
        f"{r.getMessage()} {sorted(vars(r).items())}"
        for r in caplog.records
        if not r.name.startswith("routee_viber_async.sandbox")
    )
    assert "accepted" in client_logs
    assert len(telemetry.named("routee.messages.send")) == COUNT
    assert any(text.startswith("routee.tracking_id=") for text in otel_text)
    assert "routee_client_sends_total" in prometheus_text
    for label, secret in secrets.items():
        for text in otel_text:
            assert secret not in text, f"{label} in an OpenTelemetry export: {text}"
        assert secret not in prometheus_text, f"{label} in the Prometheus metrics"
        assert secret not in client_logs, f"{label} in a log record"
