"""OpenTelemetry traces and metrics for the client (extra ``otel``: the OpenTelemetry API only).

::

    from routee_viber_async.integrations.opentelemetry import OpenTelemetryHooks

    client = RouteeViberClient(credentials=..., hooks=[OpenTelemetryHooks()])

The providers default to the global ones (``opentelemetry.trace.set_tracer_provider`` and
``opentelemetry.metrics.set_meter_provider``, which the SDK or a distro sets up); without an SDK
everything is a no-op.

Traces: one span per SDK call, ``routee.<resource>.<method>`` (``routee.messages.send``), the
current span while the call runs; under it one CLIENT span per HTTP attempt named after the HTTP
method, with the stable HTTP client semantic conventions (``http.request.method``,
``server.address``, ``server.port``, ``url.full`` without its query string,
``http.response.status_code``, ``error.type``, ``http.request.resend_count`` on retries and
replays), and a span ``routee.token.fetch`` for each access token fetch (no credential in it).
Sends carry ``routee.seq``, ``routee.tracking_id`` and ``routee.outcome``; a retry is an event
``routee.retry`` on the call's span.

Metrics: ``http.client.request.duration`` (histogram, seconds) and ``routee.client.sends``
(counter, attribute ``outcome`` = ``ok`` | ``failed`` | ``unknown``).

No pin, token, secret or template parameter value goes into any attribute or event: the hooks
only see the events of :mod:`routee_viber_async` (URLs without query strings, statuses, error
class names), never a request body or an error message. A send's log records get its
``trace_id`` and ``span_id`` (hex) besides ``seq`` and ``tracking_id``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .._hooks import AttemptEvent, CallEvent, Hooks, RetryEvent, TokenFetchEvent
from .._version import __version__

try:
    from opentelemetry import context, metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "routee_viber_async.integrations.opentelemetry needs the OpenTelemetry API; "
        "install the extra: pip install 'routee-viber-async[otel]'"
    ) from exc

__all__ = ["OpenTelemetryHooks"]

_logger = logging.getLogger("routee_viber_async")
_SCOPE = "routee_viber_async"
#: The semantic conventions' advised buckets for ``http.client.request.duration`` (seconds).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def _qualified_name(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


class OpenTelemetryHooks(Hooks):
    """Hooks that trace each call and HTTP attempt and record the HTTP and send metrics.

    ``tracer_provider`` and ``meter_provider`` default to the global providers.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        # Sends are counted here and reported when the metrics are collected (an asynchronous
        # counter): one dictionary update per send instead of a synchronous measurement.
        self._send_counts: dict[str, int] = {}
        meter.create_observable_counter(
            "routee.client.sends",
            callbacks=[self._observe_sends],
            unit="{send}",
            description="Sends by outcome: ok, failed, or unknown (may have reached Routee).",
        )
        #: The attributes of ``http.client.request.duration`` by (method, address, port,
        #: status, error type): built once each.
        self._measured: dict[tuple[str, str, int, int | None, str | None], dict[str, Any]] = {}

    def _observe_sends(self, options: metrics.CallbackOptions) -> list[metrics.Observation]:
        counts = dict(self._send_counts)  # a copy: the reader may run in another thread
        return [metrics.Observation(n, {"outcome": outcome}) for outcome, n in counts.items()]

    # -- calls --------------------------------------------------------------------------------

    def call_started(self, call: CallEvent) -> tuple[trace.Span, object]:
        attributes = None if call.seq is None else {"routee.seq": call.seq}
        span = self._tracer.start_span(call.name, kind=SpanKind.INTERNAL, attributes=attributes)
        if _logger.isEnabledFor(logging.INFO):  # only records need the ids as text
            ids = span.get_span_context()
            if ids.is_valid:
                call.log_extra["trace_id"] = format(ids.trace_id, "032x")
                call.log_extra["span_id"] = format(ids.span_id, "016x")
        # The call's span is the current one while it runs: its attempts become its children.
        return span, context.attach(trace.set_span_in_context(span))

    def call_ended(self, call: CallEvent, state: Any, error: BaseException | None) -> None:
        if state is None:  # its start failed (and was logged)
            return
        span, token = state
        context.detach(token)
        attributes: dict[str, str | int] = {}
        if call.tracking_id is not None:
            attributes["routee.tracking_id"] = call.tracking_id
        if call.attempts is not None:
            attributes["routee.attempts"] = call.attempts
        outcome = call.outcome
        if outcome is not None:
            attributes["routee.outcome"] = outcome
            self._send_counts[outcome] = self._send_counts.get(outcome, 0) + 1
        if error is not None:
            # The class name only, never the message: no server text leaves through a span.
            attributes["error.type"] = _qualified_name(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.set_attributes(attributes)
        span.end()

    # -- HTTP attempts ------------------------------------------------------------------------

    def attempt_started(self, attempt: AttemptEvent) -> int:
        # The span is made at the end, with this start time and all its attributes at once
        # (cheaper than setting them one by one); nothing runs under it meanwhile.
        return time.time_ns()

    def attempt_ended(self, attempt: AttemptEvent, state: Any, error: BaseException | None) -> None:
        if state is None:
            return
        error_type = attempt.error_type
        if error_type is not None and error is not None:
            error_type = _qualified_name(error)
        if attempt.duration is not None:
            self._duration.record(attempt.duration, self._measured_attributes(attempt, error_type))
        if trace.get_current_span().is_recording():
            self._attempt_span(attempt, state, error_type)
        # else: the call's span was sampled out; its attempts' spans would be dropped too.

    def _attempt_span(self, attempt: AttemptEvent, started_ns: int, error_type: str | None) -> None:
        attributes: dict[str, str | int] = {
            "http.request.method": attempt.method,
            "server.address": attempt.server_address,
            "server.port": attempt.server_port,
            "url.full": attempt.url,
        }
        if attempt.number > 1:
            attributes["http.request.resend_count"] = attempt.resend_count
        status = attempt.status
        if status is not None:
            attributes["http.response.status_code"] = status
        if error_type is not None:
            attributes["error.type"] = error_type
        span = self._tracer.start_span(
            attempt.method, kind=SpanKind.CLIENT, attributes=attributes, start_time=started_ns
        )
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def _measured_attributes(self, attempt: AttemptEvent, error_type: str | None) -> dict[str, Any]:
        key = (
            attempt.method,
            attempt.server_address,
            attempt.server_port,
            attempt.status,
            error_type,
        )
        measured = self._measured.get(key)
        if measured is None:
            measured = {
                "http.request.method": attempt.method,
                "server.address": attempt.server_address,
                "server.port": attempt.server_port,
            }
            if attempt.status is not None:
                measured["http.response.status_code"] = attempt.status
            if error_type is not None:
                measured["error.type"] = error_type
            self._measured[key] = measured
        return measured

    def retry_scheduled(self, retry: RetryEvent) -> None:
        trace.get_current_span().add_event(
            "routee.retry",
            {
                "routee.retry.delay": retry.delay,
                "routee.retry.reason": retry.reason,
                "routee.retry.attempt": retry.attempt,
            },
        )

    # -- tokens -------------------------------------------------------------------------------

    def token_fetch_started(self, fetch: TokenFetchEvent) -> trace.Span:
        return self._tracer.start_span(
            "routee.token.fetch",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "server.address": fetch.server_address,
                "server.port": fetch.server_port,
                "url.full": fetch.url,
                "routee.token.reason": fetch.reason,
            },
        )

    def token_fetch_ended(
        self, fetch: TokenFetchEvent, state: Any, error: BaseException | None
    ) -> None:
        if state is None:
            return
        span: trace.Span = state
        if error is not None:
            status = getattr(error, "status", None)
            if isinstance(status, int):
                span.set_attribute("http.response.status_code", status)
            span.set_attribute("error.type", fetch.error_type or _qualified_name(error))
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def __repr__(self) -> str:
        return "<OpenTelemetryHooks>"
