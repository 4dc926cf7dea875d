"""A FastAPI app that hands OTP sends to taskiq workers (``examples/taskiq_worker.py``).

    taskiq worker examples.taskiq_worker:broker --workers 2   # as many as you like
    uvicorn examples.taskiq_app:app --workers 4               # any number of web workers too
    curl -X POST localhost:8000/otp -H 'content-type: application/json' \\
         -d '{"to": "+306912345678"}'

``POST /otp`` answers at once with the task id; ``GET /otp/{task_id}`` tells whether it was
sent. The rate limit is the workers' business (shared in Redis), not the web app's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from examples.taskiq_worker import broker, send_otp


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await broker.startup()  # also creates the consumer group before anything is sent
    try:
        yield
    finally:
        await broker.shutdown()


app = FastAPI(lifespan=lifespan)


class OtpRequest(BaseModel):
    to: str


@app.post("/otp", status_code=202)
async def request_otp(body: OtpRequest) -> dict[str, str]:
    task = await send_otp.kiq(body.to)
    return {"task_id": task.task_id}


@app.get("/otp/{task_id}")
async def otp_status(task_id: str) -> dict[str, Any]:
    if not await broker.result_backend.is_result_ready(task_id):
        return {"ready": False}
    result = await broker.result_backend.get_result(task_id)
    if result.is_err:
        return {"ready": True, "error": str(result.error)}
    return {"ready": True, **result.return_value}
