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
    ├── InvalidResponseError       a 2xx answer that cannot be used (outcome unknown)
    │   └── ResponseTooLargeError  an answer over the client's ``max_response_size``
    ├── TransportError             connection refused or dropped, timeouts
    │   └── RequestTimeoutError
    ├── ClientClosedError          a call on a client that was closed
    ├── ConfigurationError         ``from_env()`` found no usable settings
    └── WaitTimeoutError           ``tracking.wait`` gave up before a final status

HTTP errors carry ``status``, the parsed ``body``, the response ``headers`` and the request's
``method`` and ``path``, and Routee's own ``code`` and ``developer_message``. None of them ever
carries the access token, the application secret or a secret template parameter (``pin``):
bodies are masked by key, the request's secret values and the token are scrubbed out of any
server text, the ``Authorization`` header is never kept, and an aiohttp exception is never
chained (only a summary of its type and message, :class:`CauseSummary`).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, NamedTuple

from . import _json
from ._masking import mask_secrets, scrub_text, scrub_value

__all__ = [
    "AMBIGUOUS_STATUSES",
    "APIStatusError",
    "AuthenticationError",
    "CauseSummary",
    "ClientClosedError",
    "ConfigurationError",
    "InvalidResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RouteeError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
    "ValidationError",
    "ValidationIssue",
    "WaitTimeoutError",
    "outcome_unknown",
    "bare_path",
    "parse_retry_after",
    "routee_status_error",
    "scrub_error",
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
    call was retried, say), whatever this final error says. ``nothing_sent`` is True when the
    call's last attempt failed before its request was written (fetching the access token, say):
    that attempt certainly did not reach the API.
    """

    attempts: int = 0
    earlier_attempt_unknown: bool = False
    nothing_sent: bool = False


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
    """Routee answered with an HTTP error status.

    ``code`` and ``developer_message`` are Routee's own (its JSON error body's ``code`` and
    ``developerMessage``), when it gave them; ``str()`` shows them, e.g.
    ``POST /viber/transactional/messages: HTTP 404: Sender other was not found. (404000000)``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        developer_message: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.developer_message = developer_message
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


class InvalidResponseError(RouteeError):
    """Routee answered 2xx, but the answer cannot be used: not JSON, empty where a result
    was due, or without a field the SDK needs (a send's ``trackingId``).

    The request reached Routee and was probably accepted, so for a send the outcome is
    *unknown* (``request_sent`` is True and :func:`outcome_unknown` says so): never resend it
    blindly. ``body`` is what came (masked, scrubbed, cut to 4 KiB of text); ``status`` is the
    answer's status, None where only the decoded answer was at hand.
    """

    request_sent = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
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
        answered = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{where}{answered}{message}")


class ResponseTooLargeError(InvalidResponseError):
    """An answer larger than the client's ``max_response_size`` (``limit``, in bytes).

    Raised before the body is read in full; the connection is closed. Never retried; for a send
    the outcome is unknown, as for any other answer that came back.
    """

    def __init__(self, *, status: int, limit: int, method: str, path: str) -> None:
        self.limit = limit
        super().__init__(
            f"the answer is larger than max_response_size ({limit} bytes)",
            status=status,
            method=method,
            path=path,
        )


class ClientClosedError(RouteeError, RuntimeError):
    """A call was made on a client (or transport) after :meth:`close`. Nothing was sent."""

    nothing_sent = True


class ConfigurationError(RouteeError, ValueError):
    """The client cannot be configured as asked: ``from_env()`` without credentials, say."""


class CauseSummary(Exception):
    """What an SDK error chains instead of the library exception that caused it.

    aiohttp's exceptions carry the request (its headers, ``Authorization`` included), and error
    trackers serialise every chained exception with its attributes. This keeps only the
    original's type name and a short message: ``cause_type``, ``str()``.
    """

    def __init__(self, cause_type: str, message: str) -> None:
        self.cause_type = cause_type
        super().__init__(f"{cause_type}: {message}" if message else cause_type)


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

    Timeouts after the request was written, connections dropped after writing, 500/502/504
    answers and 2xx answers that cannot be read leave the outcome unknown; a refusal (4xx), a
    503, a connection that was never made or a failure to get an access token means the
    request certainly did not take effect, unless an earlier attempt of the same call was
    itself ambiguous.
    """
    if not isinstance(error, RouteeError):
        return False
    if error.earlier_attempt_unknown:
        return True
    if error.nothing_sent:
        return False
    if isinstance(error, InvalidResponseError):
        return True
    if isinstance(error, TransportError):
        return error.request_sent is not False
    if isinstance(error, APIStatusError):
        return error.status in AMBIGUOUS_STATUSES
    return False


def scrub_error(error: RouteeError, secrets: Collection[str]) -> None:
    """Remove secret values (a request's pin, the access token) from an error, in place.

    Server text lands in an error's message, ``body``, ``developer_message`` and ``issues``:
    each is scrubbed, in the error and in every SDK error or :class:`CauseSummary` it chains.
    Called once, on the way out of a failed call; a no-op without secrets.
    """
    if not secrets:
        return
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RouteeError | CauseSummary):
            _scrub_one(current, secrets)
            pending += (current.__cause__, current.__context__)


def _scrub_one(error: BaseException, secrets: Collection[str]) -> None:
    error.args = tuple(
        scrub_text(arg, secrets) if isinstance(arg, str) else arg for arg in error.args
    )
    attributes = vars(error)
    if "body" in attributes:
        attributes["body"] = scrub_value(attributes["body"], secrets)
    message = attributes.get("developer_message")
    if isinstance(message, str):
        attributes["developer_message"] = scrub_text(message, secrets)
    if isinstance(error, ValidationError):
        error.issues = [
            ValidationIssue(issue.code, scrub_text(issue.message, secrets))
            for issue in error.issues
        ]


# -- Routee's error answers ------------------------------------------------------------------
#
# The transport knows HTTP only: it is handed routee_status_error (the client does that) and
# calls it for every answer that is not 2xx, as anthropic-sdk-python's base client calls its
# ``_make_status_error``.

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableError,
}
_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_MAX_TEXT_BODY = 4096


def bare_path(path: str) -> str:
    """``path`` without its query string (for logs and errors)."""
    return path.partition("?")[0]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None if unusable.

    Accepts delay-seconds (``"120"``, also ``"1.5"``) and an HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). A date in the past, or a negative number, means 0.
    The value is not capped here: callers cap it with ``RetryPolicy.max_retry_after``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def error_body(raw: bytes) -> Any:
    """An answer's body as an error keeps it: its JSON, or its text cut to 4 KiB."""
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError:
        text = raw.decode("utf-8", "replace")
        return text if len(text) <= _MAX_TEXT_BODY else text[:_MAX_TEXT_BODY] + "…"


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _validation_error(
    body: Any, headers: Mapping[str, str], method: str, path: str
) -> ValidationError:
    """Routee's HTTP 400: ``code``, ``developerMessage`` and the ``validationIssues`` list."""
    code = developer_message = None
    issues: list[ValidationIssue] = []
    if isinstance(body, Mapping):
        code = _text(body.get("code"))
        developer_message = _text(body.get("developerMessage")) or _text(body.get("message"))
        raw_issues = body.get("validationIssues")
        if isinstance(raw_issues, list):
            for item in raw_issues:
                if isinstance(item, Mapping):
                    issues.append(
                        ValidationIssue(
                            _text(item.get("code")) or "UNKNOWN", _text(item.get("message")) or ""
                        )
                    )
    if not issues:
        issues.append(
            ValidationIssue("BAD_REQUEST", developer_message or "the server refused the request")
        )
    return ValidationError(
        issues,
        code=code,
        developer_message=developer_message,
        status=400,
        body=body,
        headers=headers,
        method=method,
        path=path,
    )


def routee_status_error(
    status: int, raw: bytes, headers: Mapping[str, str], method: str, path: str
) -> RouteeError:
    """The typed error for one of Routee's non-2xx answers (body masked, query dropped)."""
    path = bare_path(path)
    body = error_body(raw)
    if status == 400:
        return _validation_error(body, headers, method, path)
    code = developer_message = None
    if isinstance(body, Mapping):
        code = _text(body.get("code")) or _text(body.get("error"))
        developer_message = _text(body.get("developerMessage")) or _text(body.get("message"))
    # Routee's own words first ("Sender other was not found."), the status phrase otherwise.
    message = developer_message or _PHRASES.get(status, "unexpected status")
    if code:
        message = f"{message} ({code})"
    details: dict[str, Any] = {
        "status": status,
        "code": code,
        "developer_message": developer_message,
        "body": body,
        "headers": headers,
        "method": method,
        "path": path,
    }
    if status == 429:
        return RateLimitError(
            message, retry_after=parse_retry_after(headers.get("Retry-After")), **details
        )
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if 500 <= status < 600 else APIStatusError
    return cls(message, **details)
