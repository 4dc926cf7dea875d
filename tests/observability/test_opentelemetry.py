"""OpenTelemetryHooks against the sandbox over loopback, read back from the SDK's memory."""

from __future__ import annotations

import logging

import pytest
from conftest import MakeClient
from observability_helpers import PIN, Telemetry, otp
from opentelemetry.trace import SpanKind, StatusCode

from routee_viber_async import NotFoundError, RetryPolicy, ServerError, Template
from routee_viber_async.sandbox import Sandbox

SEND_PATH = "/viber/transactional/messages"


async def test_a_send_is_a_call_span_with_one_client_span_per_attempt(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    result = await client.messages.send(otp(sandbox, template, seq=4242))

    [call] = telemetry.named("routee.messages.send")
    assert call.kind is SpanKind.INTERNAL
    assert call.attributes is not None
    assert call.attributes["routee.seq"] == 4242
    assert call.attributes["routee.tracking_id"] == result.tracking_id
    assert call.attributes["routee.outcome"] == "ok"
    assert call.status.status_code is not StatusCode.ERROR
    [attempt] = telemetry.children(call, "POST")
    assert attempt.kind is SpanKind.CLIENT
    assert dict(attempt.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": sandbox.port,
        "url.full": sandbox.base_url + SEND_PATH,
        "http.response.status_code": 200,
    }
    assert telemetry.sends() == {"ok": 1}
    [point] = [
        p
        for p in telemetry.points("http.client.request.duration")
        if p.attributes.get("url.full") is None and p.attributes["http.request.method"] == "POST"
    ]
    assert point.count == 1
    assert point.attributes["http.response.status_code"] == 200
    assert point.attributes["server.port"] == sandbox.port


async def test_the_token_fetch_is_a_span_of_its_own_without_the_credentials(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    await client.messages.send(otp(sandbox, template))

    [call] = telemetry.named("routee.messages.send")
    [fetch] = telemetry.children(call, "routee.token.fetch")
    assert fetch.kind is SpanKind.CLIENT
    attributes = dict(fetch.attributes or {})
    assert attributes["url.full"] == sandbox.auth_url
    assert attributes["routee.token.reason"] == "initial"
    assert attributes["http.request.method"] == "POST"
    credentials = sandbox.credentials
    for value in attributes.values():
        assert credentials.application_secret not in str(value)
        assert credentials.application_id not in str(value)
    token = client._transport.tokens.token
    assert token is not None
    for span in telemetry.spans():
        for value in (span.attributes or {}).values():
            assert token.value not in str(value)


async def test_a_retried_send_has_two_attempt_spans_the_second_a_resend(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    await client.templates.get(template.template_id)  # the token first: only the send retries
    sandbox.inject_fault("service_unavailable")
    await client.messages.send(otp(sandbox, template))

    [call] = telemetry.named("routee.messages.send")
    first, second = telemetry.children(call, "POST")
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert "error.type" not in second.attributes
    [retry] = [event for event in call.events if event.name == "routee.retry"]
    assert retry.attributes is not None
    assert retry.attributes["routee.retry.reason"] == "HTTP 503"
    assert call.attributes is not None
    assert call.attributes["routee.attempts"] == 2
    assert telemetry.sends() == {"ok": 1}


async def test_a_refused_token_is_refreshed_and_the_request_replayed_as_a_resend(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    # forbidden_refresh_after=0: the sandbox's 403 for a revoked token is treated like a 401.
    client = make_client(hooks=[telemetry.hooks()], forbidden_refresh_after=0)
    await client.templates.get(template.template_id)
    sandbox.revoke_tokens()
    await client.messages.send(otp(sandbox, template))

    [call] = telemetry.named("routee.messages.send")
    refused, replayed = telemetry.children(call, "POST")
    assert refused.attributes is not None
    assert replayed.attributes is not None
    assert refused.attributes["http.response.status_code"] == 403
    assert replayed.attributes["http.request.resend_count"] == 1
    assert replayed.attributes["http.response.status_code"] == 200
    [fetch] = telemetry.children(call, "routee.token.fetch")
    assert fetch.attributes is not None
    assert fetch.attributes["routee.token.reason"] == "refused"
    assert telemetry.sends() == {"ok": 1}


async def test_failures_are_error_spans_and_counted_failed_or_unknown(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()], retry=RetryPolicy.disabled())
    missing = Template(template_id="no-such-template")  # type: ignore[call-arg]
    with pytest.raises(NotFoundError):
        await client.messages.send(otp(sandbox, missing))
    sandbox.inject_fault("server_error")  # may have reached Routee: outcome unknown
    with pytest.raises(ServerError):
        await client.messages.send(otp(sandbox, template))

    refused, ambiguous = sorted(
        telemetry.named("routee.messages.send"), key=lambda span: span.start_time or 0
    )
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.attributes is not None
    assert refused.attributes["error.type"] == "routee_viber_async.NotFoundError"
    assert refused.attributes["routee.outcome"] == "failed"
    [attempt] = telemetry.children(refused, "POST")
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "404"
    assert ambiguous.attributes is not None
    assert ambiguous.attributes["routee.outcome"] == "unknown"
    assert "routee.tracking_id" not in ambiguous.attributes
    assert telemetry.sends() == {"failed": 1, "unknown": 1}


async def test_send_many_gives_one_call_span_per_input_under_the_callers_span(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    tracer = telemetry.tracer_provider.get_tracer("test")
    messages = [otp(sandbox, template, pin=f"{n:06d}") for n in range(7)]
    with tracer.start_as_current_span("batch") as batch:
        outcomes = [outcome async for outcome in client.messages.send_many(messages, concurrency=3)]
    assert all(outcome.ok for outcome in outcomes)

    [batch_span] = telemetry.named("batch")
    assert batch_span.context.span_id == batch.get_span_context().span_id
    calls = telemetry.named("routee.messages.send")
    assert len(calls) == 7
    assert all(span.parent is not None for span in calls)
    assert {span.parent.span_id for span in calls if span.parent} == {batch_span.context.span_id}
    seqs = {span.attributes["routee.seq"] for span in calls if span.attributes}
    assert seqs == {outcome.request.seq for outcome in outcomes}
    tracking = {span.attributes["routee.tracking_id"] for span in calls if span.attributes}
    assert tracking == {outcome.result.tracking_id for outcome in outcomes if outcome.result}
    for span in calls:
        assert len(telemetry.children(span, "POST")) == 1
    assert telemetry.sends() == {"ok": 7}


async def test_tracking_wait_is_a_span_over_its_polls(
    sandbox: Sandbox, template: Template, telemetry: Telemetry, make_client: MakeClient
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    sent = await client.messages.send(otp(sandbox, template))
    record = await client.tracking.wait(sent.tracking_id, timeout=30, poll_interval=0.01)
    assert record.is_final

    [wait] = telemetry.named("routee.tracking.wait")
    polls = telemetry.children(wait, "routee.tracking.get")
    assert polls
    assert len(polls) == len(telemetry.named("routee.tracking.get"))
    for poll in polls:
        [attempt] = telemetry.children(poll, "GET")
        assert attempt.attributes is not None
        assert attempt.attributes["url.full"] == (
            f"{sandbox.base_url}/viber/tracking/{sent.tracking_id}"
        )
    assert wait.status.status_code is not StatusCode.ERROR
    # Only sends are counted as sends.
    assert telemetry.sends() == {"ok": 1}


async def test_a_sends_log_records_carry_its_seq_tracking_id_and_trace_ids(
    sandbox: Sandbox,
    template: Template,
    telemetry: Telemetry,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(hooks=[telemetry.hooks()])
    await client.templates.get(template.template_id)
    sandbox.inject_fault("service_unavailable")
    with caplog.at_level(logging.DEBUG, logger="routee_viber_async"):
        result = await client.messages.send(otp(sandbox, template, seq=777))

    [call] = telemetry.named("routee.messages.send")
    records = [r for r in caplog.records if r.name == "routee_viber_async"]
    retrying = [r for r in records if r.getMessage().startswith("retrying")]
    accepted = [r for r in records if "accepted" in r.getMessage()]
    assert retrying
    assert accepted
    for record in retrying + accepted:
        assert record.seq == 777  # type: ignore[attr-defined]
        assert record.trace_id == format(call.context.trace_id, "032x")  # type: ignore[attr-defined]
        assert record.span_id == format(call.context.span_id, "016x")  # type: ignore[attr-defined]
    assert accepted[0].tracking_id == result.tracking_id  # type: ignore[attr-defined]
    assert PIN not in caplog.text


async def test_a_sampled_out_call_has_no_attempt_spans_but_its_metrics(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=ALWAYS_OFF)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    unsampled = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]), exporter, reader)
    client = make_client(hooks=[unsampled.hooks()])
    await client.messages.send(otp(sandbox, template))

    assert unsampled.spans() == []
    assert unsampled.sends() == {"ok": 1}
    assert [p.count for p in unsampled.points("http.client.request.duration")] == [1]
    tracer_provider.shutdown()
    unsampled.meter_provider.shutdown()
