"""A send's outcome as a journal row, and an error as a results line says it (no secret)."""

from __future__ import annotations

from .._errors import RouteeError, ValidationError
from ..resources import SendOutcome
from ._journal import FAILED, SENT, UNKNOWN, RowRecord

__all__ = ["describe_error", "row_record"]


def row_record(index: int, to: str, outcome: SendOutcome) -> RowRecord:
    """The journal's row for an outcome (the results line is made from it)."""
    seq = outcome.request.seq
    assert seq is not None
    common = (index, to, seq)
    if outcome.result is not None:
        status = outcome.result.status
        return RowRecord(
            *common,
            state=SENT,
            tracking_id=outcome.result.tracking_id,
            status=str(status.status) if status is not None and status.status else "QUEUED",
            error=None,
            attempts=outcome.attempts,
            emitted=True,
        )
    unknown = outcome.outcome_unknown
    return RowRecord(
        *common,
        state=UNKNOWN if unknown else FAILED,
        tracking_id=None,
        status=UNKNOWN if unknown else "failed",
        error=describe_error(outcome.error),
        attempts=outcome.attempts,
        emitted=True,
    )


def describe_error(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, ValidationError) and error.issues:
        return "; ".join(f"{code}: {message}" for code, message in error.issues)
    if isinstance(error, RouteeError):
        return f"{type(error).__name__}: {error}"
    # Not ours: name the type only, its message could carry anything.
    return f"{type(error).__name__}"
