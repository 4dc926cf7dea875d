"""Prometheus metrics for the client (extra ``prometheus``, on prometheus-client).

::

    from routee_viber_async.integrations.prometheus import PrometheusHooks, serve_metrics

    client = RouteeViberClient(credentials=..., hooks=[PrometheusHooks()])
    async with serve_metrics(9464):   # GET http://127.0.0.1:9464/metrics
        ...

The metrics (all with the ``routee_`` prefix):

- ``routee_client_sends_total{outcome}``: sends by outcome, ``ok``, ``failed`` or ``unknown``
  (may have reached Routee: never resend blindly);
- ``routee_http_request_duration_seconds{method,status}``: each HTTP attempt's duration, by
  method and status code (or the error's class name when no answer came);
- ``routee_http_retries_total{reason}``: retries scheduled, by reason (``HTTP 429``,
  ``HTTP 503``, ``timeout``, ``connection error``, ...);
- ``routee_rate_limit_wait_seconds``: how long requests waited for a rate limiter;
- ``routee_http_requests_in_flight``: HTTP requests in flight now;
- ``routee_token_fetches_total{outcome}``: access token fetches, ``ok`` or ``failed``.

Labels hold only those bounded values: no recipient, tracking id, pin or URL.
``routee-viber send-many --metrics-port P`` serves them while it runs.
"""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from .._hooks import AttemptEvent, CallEvent, Hooks, RetryEvent, TokenFetchEvent

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "routee_viber_async.integrations.prometheus needs prometheus-client; "
        "install the extra: pip install 'routee-viber-async[prometheus]'"
    ) from exc

__all__ = ["MetricsServer", "PrometheusHooks", "serve_metrics"]

#: Buckets of the HTTP durations (seconds): OpenTelemetry's advice for HTTP clients.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: Buckets of the rate-limit waits (seconds).
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Metrics:
    """The client's metrics in one registry (made once per registry, shared by its hooks)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sends = Counter(
            "routee_client_sends",
            "Sends by outcome: ok, failed, or unknown (may have reached Routee).",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "routee_http_request_duration_seconds",
            "Duration of each HTTP attempt, by method and status (or error class).",
            ["method", "status"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "routee_http_retries",
            "Retries scheduled, by reason.",
            ["reason"],
            registry=registry,
        )
        self.rate_limit_wait = Histogram(
            "routee_rate_limit_wait_seconds",
            "How long requests waited for a rate limiter.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "routee_http_requests_in_flight", "HTTP requests in flight.", registry=registry
        )
        self.token_fetches = Counter(
            "routee_token_fetches",
            "Access token fetches, by outcome (ok or failed).",
            ["outcome"],
            registry=registry,
        )


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics_of(registry: CollectorRegistry) -> _Metrics:
    """The metrics of ``registry``, created on first use: any number of hooks may share one."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = _Metrics(registry)
    return metrics


class PrometheusHooks(Hooks):
    """Hooks that keep the client's Prometheus metrics in ``registry`` (default: the global
    ``prometheus_client.REGISTRY``). Several clients' hooks on one registry add up."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        metrics = _metrics_of(self.registry)
        self._metrics = metrics
        self._in_flight = metrics.in_flight
        self._wait = metrics.rate_limit_wait
        # Labelled children, looked up once per label value rather than once per event.
        self._sends: dict[str, Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}
        self._retries: dict[str, Any] = {}

    def call_ended(self, call: CallEvent, state: Any, error: BaseException | None) -> None:
        outcome = call.outcome
        if outcome is None:
            return
        child = self._sends.get(outcome)
        if child is None:
            child = self._sends[outcome] = self._metrics.sends.labels(outcome)
        child.inc()

    def attempt_started(self, attempt: AttemptEvent) -> None:
        self._in_flight.inc()

    def attempt_ended(self, attempt: AttemptEvent, state: Any, error: BaseException | None) -> None:
        self._in_flight.dec()
        status = str(attempt.status) if attempt.status is not None else type(error).__name__
        key = (attempt.method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self._metrics.duration.labels(*key)
        if attempt.duration is not None:
            child.observe(attempt.duration)

    def retry_scheduled(self, retry: RetryEvent) -> None:
        child = self._retries.get(retry.reason)
        if child is None:
            child = self._retries[retry.reason] = self._metrics.retries.labels(retry.reason)
        child.inc()

    def token_fetch_ended(
        self, fetch: TokenFetchEvent, state: Any, error: BaseException | None
    ) -> None:
        self._metrics.token_fetches.labels("ok" if error is None else "failed").inc()

    def rate_limit_waited(self, seconds: float) -> None:
        self._wait.observe(seconds)

    def __repr__(self) -> str:
        return f"<PrometheusHooks registry={self.registry!r}>"


# -- serving ----------------------------------------------------------------------------------


class MetricsServer:
    """An HTTP server of ``GET /metrics`` in the running event loop (see :func:`serve_metrics`).

    ``port`` is the port it listens on (the one picked when asked for port 0), ``url`` the
    address of its metrics page.
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def start(self) -> MetricsServer:
        """Start listening; returns the server."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner, self.port)
        return self

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def close(self) -> None:
        """Stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MetricsServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked


def serve_metrics(
    port: int, *, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """A :class:`MetricsServer` of ``registry`` (default: the global one) on ``host:port``.

    Use it as ``async with serve_metrics(port, registry=...) as server:`` (or ``await
    server.start()`` and ``await server.close()``). Port 0 picks a free port
    (``server.port``). The default host is loopback; pass ``host="0.0.0.0"`` for a
    Prometheus on another machine.
    """
    return MetricsServer(REGISTRY if registry is None else registry, host, port)
