"""taskiq workers that send Viber OTPs under one rate limit shared by all of them.

Start Redis, then any number of workers, on any machines::

    taskiq worker examples.taskiq_worker:broker --workers 2

and kick tasks from anywhere that imports this module (``examples/taskiq_app.py`` does it from a
FastAPI app). Each worker process gets its own ``RouteeViberClient`` (``setup_routee``), and
every send of every worker waits for the same ``RedisRateLimiter``.

Configuration (environment)::

    REDIS_URL                 redis://localhost:6379/0 by default
    ROUTEE_RATE               sends per second for all workers together (default: 50)
    ROUTEE_APPLICATION_ID, ROUTEE_APPLICATION_SECRET (or ROUTEE_ACCESS_TOKEN), optionally
    ROUTEE_BASE_URL and ROUTEE_AUTH_URL (the sandbox's: ``routee-viber sandbox`` prints them)
    ROUTEE_SENDER_ID, ROUTEE_OTP_TEMPLATE_ID, ROUTEE_TEMPLATE_LANG (default: en)

The pin is made in the worker and goes nowhere but the wire: a task's arguments are stored in
Redis in the clear, so a pin must never be one of them.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from redis.asyncio import Redis
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from routee_viber_async import SendMessage
from routee_viber_async.integrations.redis import RedisRateLimiter
from routee_viber_async.integrations.taskiq import RouteeClient, setup_routee

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
RATE = float(os.environ.get("ROUTEE_RATE", "50"))

broker = RedisStreamBroker(
    REDIS_URL,
    queue_name="routee:otp",
    consumer_group_name="routee-otp",
    # A worker killed mid-task must not hold its tasks forever: redeliver after a minute.
    unacknowledged_lock_timeout=60,
    # Acknowledged entries are trimmed rather than kept forever.
    maxlen=100_000,
).with_result_backend(RedisAsyncResultBackend(REDIS_URL, result_ex_time=3600))

setup_routee(
    broker,
    rate_limiter=RedisRateLimiter(Redis.from_url(REDIS_URL), "routee:rate:otp", RATE),
)


@broker.task
async def send_otp(to: str, client: RouteeClient) -> dict[str, Any]:
    """Send a fresh one-time code to ``to``; the answer names the send and the worker."""
    pin = f"{secrets.randbelow(10**6):06d}"
    # Keep what you need to check the code (e.g. an HMAC of it) in your own store here.
    result = await client.messages.send(
        SendMessage(
            os.environ["ROUTEE_SENDER_ID"],
            to,
            os.environ["ROUTEE_OTP_TEMPLATE_ID"],
            os.environ.get("ROUTEE_TEMPLATE_LANG", "en"),
            {"pin": pin},
        )
    )
    return {
        "tracking_id": result.tracking_id,
        "worker_pid": os.getpid(),
        "client_id": id(client),
        "sent_at": time.time(),
    }
