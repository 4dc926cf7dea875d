"""The sandbox's wire conventions: JSON bodies in and out, Routee's error shapes, dates.

Errors follow seed 001: ``{"code": "400000000", "developerMessage": ...}`` for a generic 400,
``{"code": "400019029", "developerMessage": ..., "validationIssues": [...]}`` for send-time
validation, and ``{"code": "<status>000000", "developerMessage": ...}`` for the other statuses.
Dates are ISO-8601 UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .. import _json
from .._errors import ValidationIssue

__all__ = [
    "GENERIC_BAD_REQUEST",
    "SEND_VALIDATION_ERROR",
    "ApiError",
    "bad_request",
    "iso_now",
    "json_response",
    "read_json_object",
    "status_code",
]

#: ``code`` of a generic HTTP 400 (seed 001 style).
GENERIC_BAD_REQUEST = "400000000"
#: ``code`` of the send-time validation error (seed 001, "Send-time validation").
SEND_VALIDATION_ERROR = "400019029"


def status_code(status: int) -> str:
    """Routee's nine-digit ``code`` for an HTTP status without a more specific one."""
    return f"{status}000000"


def iso_now() -> str:
    """Now as ISO-8601 UTC with milliseconds and ``Z`` (``2026-05-20T05:45:13.606Z``)."""
    now = datetime.now(UTC)
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z"


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        body=_json.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _summary(issues: list[ValidationIssue]) -> str:
    if len(issues) == 1:
        return issues[0].message
    return "; ".join(issue.message.rstrip(".") for issue in issues) + "."


class ApiError(Exception):
    """An error answer in Routee's shape; raised by handlers, rendered by the app's middleware."""

    def __init__(
        self,
        status: int,
        developer_message: str | None = None,
        *,
        code: str | None = None,
        issues: Iterable[ValidationIssue] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.issues = list(issues) if issues is not None else None
        if developer_message is None:
            developer_message = _summary(self.issues) if self.issues else HTTPStatus(status).phrase
        self.developer_message = developer_message
        self.code = code or status_code(status)
        self.headers = dict(headers or {})
        super().__init__(f"HTTP {status} {self.code}: {developer_message}")

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {"code": self.code, "developerMessage": self.developer_message}
        if self.issues is not None:
            body["validationIssues"] = [
                {"code": issue.code, "message": issue.message} for issue in self.issues
            ]
        return body

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        return json_response(self.body(), status=self.status, headers=self.headers)


def bad_request(issues: list[ValidationIssue] | str, *, with_issues: bool = False) -> ApiError:
    """A generic HTTP 400 (``400000000``); ``with_issues`` adds the ``validationIssues`` list."""
    if isinstance(issues, str):
        return ApiError(400, issues, code=GENERIC_BAD_REQUEST)
    return ApiError(
        400,
        _summary(issues),
        code=GENERIC_BAD_REQUEST,
        issues=issues if with_issues else None,
    )


async def read_json_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body; a generic 400 when it is not ``application/json``.

    With ``required=False`` an empty body reads as ``{}``.
    """
    raw = await request.read()
    if not raw.strip():
        if required:
            raise bad_request("A JSON object body is required.")
        return {}
    if request.content_type != "application/json":
        raise bad_request("Content-Type must be application/json.")
    try:
        body = _json.loads(raw)
    except _json.JSONDecodeError:
        raise bad_request("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body
