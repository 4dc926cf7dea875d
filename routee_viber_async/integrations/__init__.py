"""Web framework integrations for receiving Routee's callbacks and sharing one client.

- :mod:`routee_viber_async.integrations.fastapi`: ``webhook_router(...)``, ``routee_lifespan``
  and ``get_routee_client`` (needs the ``fastapi`` extra:
  ``pip install 'routee-viber-async[fastapi]'``).
- :mod:`routee_viber_async.integrations.aiohttp`: ``webhook_routes(...)`` and
  ``routee_client_ctx`` (aiohttp is a core dependency).
- :mod:`routee_viber_async.integrations.opentelemetry`: ``OpenTelemetryHooks`` (traces and
  metrics; the ``otel`` extra) and :mod:`routee_viber_async.integrations.prometheus`:
  ``PrometheusHooks`` and ``serve_metrics`` (the ``prometheus`` extra), for
  ``RouteeViberClient(hooks=[...])``.

Importing this package imports neither framework; each submodule imports only its own.
"""

__all__: list[str] = []
