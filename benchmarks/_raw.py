"""The yardstick: the aiohttp loop a user could write by hand instead of using the SDK.

One ``ClientSession`` over ``TCPConnector(limit=C)``, a ``Semaphore(C)``, a token fetched once,
``json=`` for the body and ``await r.json()`` for the answer. No validation, no models, no
masking, no token refresh: exactly what the SDK must not cost more than. The retrying variant
sleeps with full jitter outside the semaphore, as the SDK does, and retries the same statuses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

import aiohttp

from ._server import APP_ID, APP_SECRET

__all__ = ["RawClient", "RawStatusError"]

_RETRYABLE = frozenset({429, 500, 502, 503, 504})


class RawStatusError(Exception):
    """A non-2xx answer."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class RawClient:
    """A hand-written aiohttp send loop (see the module docstring)."""

    def __init__(
        self,
        *,
        send_url: str,
        auth_url: str,
        concurrency: int,
        max_attempts: int = 4,
        initial_backoff: float = 0.25,
        max_backoff: float = 8.0,
    ) -> None:
        self.send_url = send_url
        self.auth_url = auth_url
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.headers: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> RawClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency)
        )
        async with self._session.post(
            self.auth_url,
            data={"grant_type": "client_credentials"},
            auth=aiohttp.BasicAuth(APP_ID, APP_SECRET),
        ) as r:
            r.raise_for_status()
            token = (await r.json())["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, payload: dict[str, Any]) -> Any:
        """One POST, no retry."""
        assert self._session is not None
        async with (
            self._semaphore,
            self._session.post(self.send_url, json=payload, headers=self.headers) as r,
        ):
            if r.status != 200:
                raise RawStatusError(r.status)
            return await r.json()

    async def send_with_retry(self, payload: dict[str, Any]) -> Any:
        """One send with a hand-written retry: 429/5xx, full-jitter backoff, no slot held."""
        assert self._session is not None
        attempt = 0
        while True:
            attempt += 1
            async with (
                self._semaphore,
                self._session.post(self.send_url, json=payload, headers=self.headers) as r,
            ):
                status = r.status
                if status == 200:
                    return await r.json()
                await r.read()
            if status not in _RETRYABLE or attempt >= self.max_attempts:
                raise RawStatusError(status)
            ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(0, ceiling))

    async def fan_out(self, payloads: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Send every payload with ``concurrency`` workers; return ``(ok, failed)``."""
        iterator = iter(payloads)
        ok = failed = 0

        async def worker() -> None:
            nonlocal ok, failed
            for item in iterator:
                try:
                    await self.send(item)
                except (aiohttp.ClientError, RawStatusError):
                    failed += 1
                else:
                    ok += 1

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return ok, failed
