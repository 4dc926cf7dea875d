"""The web app of the shared-dedupe test, run by uvicorn in worker processes.

Each handled delivery callback is recorded in Redis (``REDIS_URL``) as ``pid tracking_id``
under the list ``DEDUP_LOG``, so that the test sees what every worker did.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from redis.asyncio import Redis

from routee_viber_async import DeliveryCallback
from routee_viber_async.integrations.fastapi import webhook_router
from routee_viber_async.integrations.redis import RedisDeduplicator

redis = Redis.from_url(os.environ["REDIS_URL"])
LOG = os.environ["DEDUP_LOG"]


async def on_delivery(callback: DeliveryCallback) -> None:
    await redis.rpush(LOG, f"{os.getpid()} {callback.tracking_id}")


app = FastAPI()
app.include_router(
    webhook_router(
        on_delivery=on_delivery,
        secret=os.environ["CALLBACK_SECRET"],
        deduplicator=RedisDeduplicator(redis, prefix=LOG + ":seen:"),
    )
)
