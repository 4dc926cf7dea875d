"""``send-many --max-failures``: stop a run whose sends keep being refused the same way.

A wrong ``--sender`` (or a revoked template, refused credentials) makes every send fail with the
same answer: sending the rest of a 2,000-row file only repeats it 2,000 times. A streak counts
the outcomes as they come: ``limit`` certain failures in a row with the same refusal (same
error class, HTTP status, Routee code and, for a 400, the same issue codes) trip it. Anything
else breaks the streak: a success, an unknown outcome (it may have reached Routee), a failure
that the client retries (429, 503, a connection error: passing trouble, not a refusal) or a
different refusal (which starts a streak of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from .._errors import RouteeError, ValidationError, outcome_unknown
from .._retry import classify
from ..resources import SendOutcome
from ._outcome import describe_error

__all__ = ["DEFAULT_MAX_FAILURES", "FailureStreak", "refusal_of"]

#: ``--max-failures`` by default.
DEFAULT_MAX_FAILURES = 20


def refusal_of(outcome: SendOutcome) -> Hashable | None:
    """What identifies the outcome's refusal, or None when it is not a certain, non-retryable
    refusal (a success, an unknown outcome, a retryable failure, an error not of the SDK)."""
    error = outcome.error
    if not isinstance(error, RouteeError) or outcome_unknown(error):
        return None
    if classify(error) is not None:  # the client retries it: not a refusal
        return None
    issues = tuple(error.codes) if isinstance(error, ValidationError) else ()
    status, code = getattr(error, "status", None), getattr(error, "code", None)
    return (type(error).__name__, status, code, issues)


class FailureStreak:
    """Counts identical refusals in a row; ``limit`` 0 never trips."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.tripped_by: SendOutcome | None = None  # the outcome that completed the streak
        #: Why the streak tripped, as a line can say it (set with ``tripped_by`` or alone).
        self.tripped_reason: str | None = None
        self._refusal: Hashable | None = None

    @property
    def tripped(self) -> bool:
        """True once ``limit`` identical refusals came in a row."""
        return self.tripped_reason is not None

    def observe(self, outcome: SendOutcome) -> bool:
        """Count one outcome; True when it completes the streak (once only)."""
        if self.observe_refusal(refusal_of(outcome), lambda: _describe(outcome)):
            self.tripped_by = outcome
            return True
        return False

    def observe_refusal(self, refusal: Hashable | None, reason: Callable[[], str]) -> bool:
        """Count one outcome by its refusal (None: not a refusal, see :func:`refusal_of`);
        ``reason`` says what it is when it completes the streak."""
        if refusal is None:
            self.count, self._refusal = 0, None
            return False
        if refusal == self._refusal:
            self.count += 1
        else:
            self.count, self._refusal = 1, refusal
        if self.limit and not self.tripped and self.count >= self.limit:
            self.tripped_reason = reason()
            return True
        return False


def _describe(outcome: SendOutcome) -> str:
    return describe_error(outcome.error)
