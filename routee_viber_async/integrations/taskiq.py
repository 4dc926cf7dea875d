"""Sending from taskiq workers: one :class:`~routee_viber_async.RouteeViberClient` per worker.

Needs the ``taskiq`` extra (``pip install 'routee-viber-async[taskiq]'``: taskiq, taskiq-redis
and redis-py)::

    from taskiq_redis import RedisStreamBroker
    from routee_viber_async.integrations.taskiq import RouteeClient, setup_routee

    broker = RedisStreamBroker(REDIS_URL, unacknowledged_lock_timeout=60, maxlen=100_000)
    setup_routee(broker, rate_limiter=RedisRateLimiter(redis, "routee:rate", 200))

    @broker.task
    async def send_otp(to: str, pin: str, client: RouteeClient) -> str:
        result = await client.messages.send(SendMessage(...))
        return result.tracking_id

The client is built with :meth:`RouteeViberClient.from_env` (credentials from ``ROUTEE_*``)
and ``client_options``, when the worker process starts (``WORKER_STARTUP``), and closed when
it stops (``WORKER_SHUTDOWN``). The process that only kicks tasks (a web app) builds none.
A ``rate_limiter`` with an ``async def check()`` (such as ``RedisRateLimiter``) is checked at
start-up, so that a worker whose Redis cannot be reached fails at once with a clear error.
"""

from __future__ import annotations

from typing import Annotated, Any

from .._client import RouteeViberClient
from .._errors import ConfigurationError

try:
    from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqEvents, TaskiqState
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "routee_viber_async.integrations.taskiq needs taskiq; "
        "install the extra: pip install 'routee-viber-async[taskiq]'"
    ) from exc

__all__ = ["RouteeClient", "setup_routee"]

_STATE_NAME = "routee_viber_client"


def setup_routee(broker: AsyncBroker, **client_options: Any) -> None:
    """Give every worker process of ``broker`` its own client, from start-up to shut-down.

    ``client_options`` go to :meth:`RouteeViberClient.from_env` (and win over the environment).
    """

    async def start(state: TaskiqState) -> None:
        limiter = client_options.get("rate_limiter")
        check = getattr(limiter, "check", None)
        if check is not None:
            await check()  # a shared limiter that cannot be reached: fail now, clearly
        setattr(state, _STATE_NAME, RouteeViberClient.from_env(**client_options))

    async def stop(state: TaskiqState) -> None:
        client = getattr(state, _STATE_NAME, None)
        if client is not None:
            delattr(state, _STATE_NAME)
            await client.close()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, stop)


def _routee_client(context: Annotated[Context, TaskiqDepends()]) -> RouteeViberClient:
    client = getattr(context.state, _STATE_NAME, None)
    if not isinstance(client, RouteeViberClient):
        raise ConfigurationError(
            "no Routee client in this worker: call setup_routee(broker, ...) where the broker "
            "is defined, so that every worker process creates one at start-up"
        )
    return client


#: The worker's client, for a task's parameter: ``async def task(..., client: RouteeClient)``.
RouteeClient = Annotated[RouteeViberClient, TaskiqDepends(_routee_client)]
