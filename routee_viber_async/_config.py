"""Retry options: :class:`RetryPolicy` and the client-wide :class:`RetryBudget`.

Both are small frozen, keyword-only ``attrs`` classes: build them once, share them freely, derive
variants with :func:`attrs.evolve`. They hold numbers only; the retry engine that reads them is
``_retry.py`` (tenacity) and the transport that owns the budget's running state is
``_transport.py``.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

__all__ = ["RetryBudget", "RetryPolicy"]


@attrs.frozen(kw_only=True)
class RetryBudget:
    """A client-wide retry quota, in the spirit of botocore's standard retry mode.

    The client starts with ``capacity`` tokens. Every retry spends ``retry_cost`` tokens
    (``timeout_cost`` when the failure was a timeout); once the bucket cannot pay for a retry,
    retryable errors surface at once instead of being repeated. A request that succeeds at its
    first attempt puts ``success_refund`` tokens back, a request that succeeds after retrying
    puts back what its last retry cost, never above ``capacity``. So a healthy client always has
    its full budget, while an outage cannot multiply the load it sends by ``max_attempts``.

    The budget is shared by a client and all its :meth:`with_options` views; the view that
    created the client fixes these numbers.
    """

    capacity: int = attrs.field(default=500, validator=[v.instance_of(int), v.ge(0)])
    retry_cost: int = attrs.field(default=5, validator=[v.instance_of(int), v.ge(0)])
    timeout_cost: int = attrs.field(default=10, validator=[v.instance_of(int), v.ge(0)])
    success_refund: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(0)])


def _seconds(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A number of seconds (or a factor) >= 0; not ``nan``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number, not {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(
            f"{attribute.name} must be a number of seconds > 0, or None; got {value!r}"
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a request is retried (tenacity under the hood).

    Retried: connection errors, timeouts, HTTP 429 and 500/502/503/504. Never retried: 400, 401
    (beyond the one token refresh), 403, 404, 422 and every other status. Waits are exponential
    with full jitter: before retry *n* the client sleeps a random time in
    ``[0, min(max_backoff, initial_backoff * 2**(n-1))]``, and at least the server's
    ``Retry-After`` (seconds or an HTTP date) capped at ``max_retry_after``.

    Attributes:
        max_attempts: tries in all, the first included (1 disables retries). The one replay
            after a token refresh (401) belongs to the try it replays and is not counted.
        initial_backoff: the first backoff ceiling, in seconds.
        max_backoff: the cap of one backoff sleep, in seconds.
        max_retry_after: the cap on a server-given ``Retry-After``, in seconds.
        deadline: overall time budget of one call across all its attempts and sleeps, in
            seconds, or None for no limit. A retry whose sleep would end past the deadline is
            not made, and the last attempt's timeout is shortened to fit.
        retry_ambiguous_sends: False (the default: at most once) means a non-idempotent
            request (POST, PATCH) that may have reached the server (a timeout after it was
            written, HTTP 500/502/504, a connection dropped after writing) is not repeated: it
            fails with an error for which ``outcome_unknown()`` is True, so an OTP is never sent
            twice behind your back. 429, 503 and failures that happened before the request was
            written are still retried. True opts in to at-least-once: such sends are repeated
            (with the same ``seq``), and a recipient may get the message twice.
        budget: the client-wide retry quota, or None to retry without one.
        sleep_scale: multiplies every sleep (``Retry-After`` included); 0 turns waiting off.
            Meant for tests: ``RetryPolicy.no_wait()`` or ``sleep_scale=0.01``.
    """

    max_attempts: int = attrs.field(default=4, validator=[v.instance_of(int), v.ge(1)])
    initial_backoff: float = attrs.field(default=0.25, validator=_seconds)
    max_backoff: float = attrs.field(default=8.0, validator=_seconds)
    max_retry_after: float = attrs.field(default=30.0, validator=_seconds)
    deadline: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    retry_ambiguous_sends: bool = attrs.field(default=False, validator=v.instance_of(bool))
    budget: RetryBudget | None = attrs.field(
        factory=RetryBudget, validator=v.optional(v.instance_of(RetryBudget))
    )
    sleep_scale: float = attrs.field(default=1.0, validator=_seconds)

    @classmethod
    def no_wait(cls, **changes: Any) -> RetryPolicy:
        """A policy that never sleeps between attempts (for tests); other fields as given."""
        changes.setdefault("sleep_scale", 0.0)
        return cls(**changes)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)
