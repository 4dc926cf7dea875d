"""Fault injection: which request fails, how, and whether before or after it was accepted.

Rates are per request to the API endpoints (``/viber/...``). 429 and 503 always happen *before*
the request is processed. 500, 502, 504, dropped connections and slow replies happen *after* the
request was processed (a send is stored and will be delivered, only the reply is lost or late)
for a share ``fault_after_accept_share`` of them: that is what at-most-once clients must survive.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from enum import StrEnum
from typing import NamedTuple

import attrs

__all__ = ["AMBIGUOUS_KINDS", "FAULT_STATUS", "Fault", "FaultInjector", "FaultKind", "FaultRates"]


class FaultKind(StrEnum):
    """A kind of injected fault; the keys of ``Sandbox.fault_counts``."""

    RATE_LIMIT = "rate_limit"
    """HTTP 429 with a ``Retry-After`` header; always before acceptance."""
    SERVER_ERROR = "server_error"
    """HTTP 500."""
    BAD_GATEWAY = "bad_gateway"
    """HTTP 502."""
    SERVICE_UNAVAILABLE = "service_unavailable"
    """HTTP 503; always before acceptance."""
    GATEWAY_TIMEOUT = "gateway_timeout"
    """HTTP 504."""
    DROP_CONNECTION = "drop_connection"
    """The connection is closed without an answer (a client-side connection error)."""
    SLOW_REPLY = "slow_reply"
    """The answer comes after ``FaultRates.slow_reply_delay`` seconds."""
    TOKEN_EXPIRY = "token_expiry"
    """The request's access token is revoked, so the request gets the invalid-token status."""


#: The HTTP status each error fault answers with.
FAULT_STATUS = {
    FaultKind.RATE_LIMIT: 429,
    FaultKind.SERVER_ERROR: 500,
    FaultKind.BAD_GATEWAY: 502,
    FaultKind.SERVICE_UNAVAILABLE: 503,
    FaultKind.GATEWAY_TIMEOUT: 504,
}

#: Kinds that may strike after the request was accepted.
AMBIGUOUS_KINDS = frozenset(
    {
        FaultKind.SERVER_ERROR,
        FaultKind.BAD_GATEWAY,
        FaultKind.GATEWAY_TIMEOUT,
        FaultKind.DROP_CONNECTION,
        FaultKind.SLOW_REPLY,
    }
)


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class FaultRates:
    """Per-request probabilities of each injected fault (their sum must not exceed 1).

    ``retry_after`` is the ``Retry-After`` value (seconds) sent with 429; ``slow_reply_delay``
    how long a slow reply waits; ``include_oauth`` also applies the status, drop and slow faults
    to ``POST /oauth/token`` (never before or after "acceptance": a token is simply not issued).
    """

    rate_limit: float = attrs.field(default=0.0, validator=_share)
    server_error: float = attrs.field(default=0.0, validator=_share)
    bad_gateway: float = attrs.field(default=0.0, validator=_share)
    service_unavailable: float = attrs.field(default=0.0, validator=_share)
    gateway_timeout: float = attrs.field(default=0.0, validator=_share)
    drop_connection: float = attrs.field(default=0.0, validator=_share)
    slow_reply: float = attrs.field(default=0.0, validator=_share)
    token_expiry: float = attrs.field(default=0.0, validator=_share)
    retry_after: float = attrs.field(default=1.0, validator=_non_negative)
    slow_reply_delay: float = attrs.field(default=3.0, validator=_non_negative)
    include_oauth: bool = False

    def __attrs_post_init__(self) -> None:
        if sum(self.rates().values()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")

    def rates(self) -> dict[FaultKind, float]:
        """The rate of each kind."""
        return {kind: getattr(self, kind.value) for kind in FaultKind}

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as sent: whole seconds as an integer, else a decimal."""
        value = self.retry_after
        return str(int(value)) if value == int(value) else f"{value:g}"


class Fault(NamedTuple):
    """One injected fault."""

    kind: FaultKind
    after_accept: bool


class FaultInjector:
    """Draws the fault (if any) of each request and counts the ones injected."""

    def __init__(self, rates: FaultRates, after_accept_share: float, rng: random.Random) -> None:
        self._rng = rng
        self._forced: deque[Fault] = deque()
        self.counts: Counter[FaultKind] = Counter()
        self.after_accept_count = 0
        self.configure(rates, after_accept_share)

    def configure(self, rates: FaultRates, after_accept_share: float) -> None:
        """Use new rates and after-acceptance share from now on (counts are kept)."""
        if not 0.0 <= after_accept_share <= 1.0:
            raise ValueError("fault_after_accept_share must be between 0 and 1")
        self.rates = rates
        self.after_accept_share = after_accept_share
        self._table = [(kind, rate) for kind, rate in rates.rates().items() if rate > 0]

    def reset(self) -> None:
        """No fault from now on: rates off, forced faults dropped, counts back to zero."""
        self.configure(FaultRates(), self.after_accept_share)
        self._forced.clear()
        self.counts.clear()
        self.after_accept_count = 0

    def force(self, kind: FaultKind, *, times: int = 1, after_accept: bool = False) -> None:
        """Make the next ``times`` API requests get ``kind``, ahead of the random draw."""
        if after_accept and kind not in AMBIGUOUS_KINDS:
            raise ValueError(f"{kind} always happens before acceptance")
        self._forced.extend(Fault(kind, after_accept) for _ in range(times))

    def pick(self, *, oauth: bool = False) -> Fault | None:
        """The fault of the next request, counted, or None."""
        fault = self._draw(oauth)
        if fault is not None:
            self.counts[fault.kind] += 1
            if fault.after_accept:
                self.after_accept_count += 1
        return fault

    def _draw(self, oauth: bool) -> Fault | None:
        if oauth:
            if not self.rates.include_oauth:
                return None
            fault = self._random()
            if fault is None or fault.kind is FaultKind.TOKEN_EXPIRY:
                return None
            return Fault(fault.kind, False)
        if self._forced:
            return self._forced.popleft()
        return self._random()

    def _random(self) -> Fault | None:
        if not self._table:
            return None
        point = self._rng.random()
        for kind, rate in self._table:
            if point < rate:
                after = kind in AMBIGUOUS_KINDS and self._rng.random() < self.after_accept_share
                return Fault(kind, after)
            point -= rate
        return None
