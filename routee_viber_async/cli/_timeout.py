"""``--timeout``: the client options that bound each API call, retries included."""

from __future__ import annotations

from typing import Any

import attrs

from .._config import RetryPolicy

__all__ = ["with_timeout"]


def with_timeout(options: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """``options`` for a ``RouteeViberClient``, where ``timeout`` (when not None) bounds one
    attempt and the whole call with its retries (the policy's ``deadline``)."""
    if timeout is None:
        return options
    retry = options.get("retry") or RetryPolicy()
    return {**options, "timeout": timeout, "retry": attrs.evolve(retry, deadline=timeout)}
