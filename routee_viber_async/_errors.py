"""The exceptions raised by routee_viber_async.

Every error subclasses :class:`RouteeError`::

    RouteeError
    ├── ValidationError            local checks, and HTTP 400 (Routee's 400019029 shape)
    ├── APIStatusError             any other HTTP error answer
    │   ├── AuthenticationError    401 after one refresh, or credentials refused
    │   ├── PermissionDeniedError  403
    │   ├── NotFoundError          404
    │   ├── UnprocessableError     422
    │   ├── RateLimitError         429 (``retry_after``)
    │   └── ServerError            5xx
    ├── TransportError             connection refused or dropped, timeouts
    │   └── RequestTimeoutError
    └── WaitTimeoutError           ``tracking.wait`` gave up before a final status

HTTP errors carry ``status``, the parsed ``body``, the response ``headers`` and the request's
``method`` and ``path``. None of them ever carries the access token, the application secret or a
template ``pin``: bodies are masked, the ``Authorization`` header is never kept, and messages are
built only from codes and field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._masking import mask_secrets

__all__ = [
    "AMBIGUOUS_STATUSES",
    "APIStatusError",
    "AuthenticationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "RouteeError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
    "ValidationError",
    "ValidationIssue",
    "WaitTimeoutError",
    "outcome_unknown",
]

#: HTTP statuses after which a request may nevertheless have been applied by the server.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})

#: The ``code`` of Routee's send-time validation error body (seed 001).
VALIDATION_ERROR_CODE = "400019029"

# Response headers that may carry credentials are never kept on an error.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "set-cookie", "cookie"})


class ValidationIssue(NamedTuple):
    """One problem found in a request: ``(code, message)``, e.g. ``PARAM_VALUE_TOO_LONG``."""

    code: str
    message: str


class RouteeError(Exception):
    """Base class of every error this package raises.

    ``attempts`` is the number of HTTP attempts the failed call made (0 when it failed before
    any request, e.g. a local validation error). ``earlier_attempt_unknown`` is True when an
    earlier attempt of the same call may have been applied by Routee (a 500 after which the
    call was retried, say), whatever this final error says.
    """

    attempts: int = 0
    earlier_attempt_unknown: bool = False


class ValidationError(RouteeError, ValueError):
    """A request breaks Routee's rules.

    Raised before any network call where the rule is known locally, and for the server's HTTP 400
    answers. ``issues`` lists every problem found, not only the first.
    """

    def __init__(
        self,
        issues: Iterable[ValidationIssue | tuple[str, str]],
        *,
        code: str | None = None,
        developer_message: str | None = None,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.issues: list[ValidationIssue] = [ValidationIssue(*issue) for issue in issues]
        self.code = code
        self.developer_message = developer_message
        self.status = status
        self.body = mask_secrets(body)
        self.headers: dict[str, str] = _safe_headers(headers)
        self.method = method
        self.path = path
        summary = developer_message or "; ".join(f"{i.code}: {i.message}" for i in self.issues)
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{summary or 'invalid request'}")

    @property
    def codes(self) -> list[str]:
        """The issue codes, in order."""
        return [issue.code for issue in self.issues]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_validation_error, (self.issues, self.code, self.developer_message))


def _rebuild_validation_error(
    issues: list[ValidationIssue], code: str | None, developer_message: str | None
) -> ValidationError:
    return ValidationError(issues, code=code, developer_message=developer_message)


class APIStatusError(RouteeError):
    """Routee answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.body = mask_secrets(body)
        self.headers: dict[str, str] = _safe_headers(headers)
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}HTTP {status}: {message}")


class AuthenticationError(APIStatusError):
    """The access token was refused after one refresh, or the credentials were refused."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the token may not do this (no Viber scope, not your sender, ...)."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown sender, template or tracking id."""


class UnprocessableError(APIStatusError):
    """HTTP 422: Routee or Viber refused the request's content."""


class RateLimitError(APIStatusError):
    """HTTP 429; ``retry_after`` holds the server's delay in seconds when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """HTTP 5xx."""


class TransportError(RouteeError):
    """The request did not get an HTTP answer: connection refused or dropped, or a timeout.

    ``request_sent`` is True when the request may have reached the server (its outcome is
    unknown), False when it certainly did not, None when that cannot be told.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        request_sent: bool | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.request_sent = request_sent
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{message}")


class RequestTimeoutError(TransportError):
    """One attempt took longer than the client's timeout."""


class WaitTimeoutError(RouteeError, TimeoutError):
    """``tracking.wait`` reached its timeout before the message reached a final status."""

    def __init__(self, tracking_id: str, timeout: float, last_status: str | None) -> None:
        self.tracking_id = tracking_id
        self.timeout = timeout
        self.last_status = last_status
        super().__init__(
            f"tracking {tracking_id}: no final status after {timeout:g}s (last: {last_status})"
        )


def _safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    return {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}


def outcome_unknown(error: BaseException | None) -> bool:
    """True when a failed request may nevertheless have reached Routee and been acted on.

    Timeouts after the request was written, connections dropped after writing, and 500/502/504
    answers leave the outcome unknown; a refusal (4xx), a 503 or a connection that was never
    made means the request certainly did not take effect, unless an earlier attempt of the same
    call was itself ambiguous.
    """
    if isinstance(error, RouteeError) and error.earlier_attempt_unknown:
        return True
    if isinstance(error, TransportError):
        return error.request_sent is not False
    if isinstance(error, APIStatusError):
        return error.status in AMBIGUOUS_STATUSES
    return False
