"""The sandbox's options, validated once (``Sandbox(**options)`` builds one of these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._faults import FaultRates

__all__ = ["SandboxOptions"]


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _share(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _to_fault_rates(value: FaultRates | Mapping[str, Any] | None) -> FaultRates:
    if value is None:
        return FaultRates()
    if isinstance(value, FaultRates):
        return value
    return FaultRates(**value)


@attrs.frozen(kw_only=True)
class SandboxOptions:
    """Every option of :class:`~routee_viber_async.sandbox.Sandbox` (all keyword-only).

    Delays are in seconds. Shares and rates are probabilities between 0 and 1, drawn from one
    random generator seeded with ``seed`` (None: a fresh random seed).
    """

    host: str = "127.0.0.1"
    """Interface to listen on (loopback by default)."""
    port: int = 0
    """TCP port; 0 picks a free one."""
    moderation_delay: float | None = attrs.field(default=0.2, validator=_non_negative)
    """Time from template creation to the automatic moderation decision; None: decide only
    through ``Sandbox.approve``/``Sandbox.reject``."""
    delivery_delay: float = attrs.field(default=0.3, validator=_non_negative)
    """Time per delivery step (QUEUED → SENT → final status)."""
    moderation: Literal["auto", "manual"] = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "manual"))
    )
    """``manual``: templates stay PENDING_MODERATION until approved or rejected by hand (the
    inbox's buttons, ``Sandbox.approve``/``reject``), whatever ``moderation_delay`` says."""
    ui: bool = False
    """Serve the web inbox at ``/`` (the JSON API under ``/_sandbox/`` is always served)."""
    allow_remote: bool = False
    """Allow a ``host`` that is not loopback. Off by default: the inbox shows OTP pins."""
    token_ttl: float = attrs.field(default=3600.0, validator=_positive)
    """Lifetime of an access token (``expires_in`` is its whole seconds)."""
    invalid_token_status: int = attrs.field(default=403, validator=attrs.validators.in_((401, 403)))
    """Status of API calls with a missing, invalid, expired or revoked token: 403 as Routee
    usually answers (seed 001, "Permissions and errors"), or 401."""
    legacy_invalid_token_status: int = attrs.field(
        default=401, validator=attrs.validators.in_((401, 403))
    )
    """The same for legacy ``POST /viber/otp``, whose reference (seed 000) lists 401 for an
    invalid or expired token."""
    failed_share: float = attrs.field(default=0.0, validator=_share)
    """Share of messages that end FAILED."""
    expired_share: float = attrs.field(default=0.0, validator=_share)
    """Share of messages that end EXPIRED (besides those whose ttl runs out)."""
    ttl_scale: float = attrs.field(default=1.0, validator=_positive)
    """Sandbox seconds per second of a send's ``ttl``: lower it (e.g. 0.01) to make ttls run out
    quickly in tests. A message whose ttl runs out before delivery ends EXPIRED."""
    faults: FaultRates = attrs.field(factory=FaultRates, converter=_to_fault_rates)
    """Fault rates per kind (a :class:`FaultRates` or a mapping of its fields)."""
    fault_after_accept_share: float = attrs.field(default=0.5, validator=_share)
    """Share of 500/502/504, dropped-connection and slow-reply faults that strike after the
    request was accepted (the send is stored and delivered; only the reply is lost)."""
    seed: int | None = None
    """Seed of the random generator behind every share and rate."""
    callback_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    """Attempts per callback when the receiver fails (non-2xx, connection error, timeout)."""
    callback_retry_delay: float = attrs.field(default=0.5, validator=_non_negative)
    """Wait between two attempts of a callback."""
    callback_timeout: float = attrs.field(default=5.0, validator=_positive)
    """Timeout of one callback POST."""
    callback_concurrency: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    """Callback POSTs in flight at most (one shared session)."""
    callback_log_size: int = attrs.field(default=1000, validator=attrs.validators.ge(0))
    """How many finished callbacks ``Sandbox.callback_log`` keeps (the most recent)."""
    sender_id: str = "sandbox-sender"
    """The ``senderInfoTrackingId`` the credentials own."""
    sender_name: str = "Sandbox"
    """The sender's display name (``from`` in answers)."""
    foreign_sender_id: str = "foreign-sender"
    """A sender that exists but belongs to another account (403)."""
    application_id: str | None = None
    """The OAuth application id (None: generated)."""
    application_secret: str | None = None
    """The OAuth application secret (None: generated)."""
    application_name: str = "routee-sandbox"
    """``applicationName`` of legacy OTP answers."""
    price: float = attrs.field(default=0.01, validator=_non_negative)
    """``price`` of each accepted send."""
    legacy_otp_ttl: int = attrs.field(default=86400, validator=attrs.validators.ge(1))
    """``ttl`` applied to a legacy OTP sent without one (and echoed in its answer)."""

    def __attrs_post_init__(self) -> None:
        if self.failed_share + self.expired_share > 1.0 + 1e-9:
            raise ValueError("failed_share + expired_share must not exceed 1")
