"""Parsing Routee's two callback payloads: delivery status and template moderation.

Routee POSTs two different JSON objects (seed 001):

- a **delivery callback** to the ``callbackUrl`` of a send: ``trackingId``, ``status.name``,
  ``status.updatedDate``, ``messageKind``, ``transactionalTemplate``, ...;
- a **moderation callback** to the ``callbackUrl`` of a template: ``templateId``,
  ``templateStatus``, and sometimes ``templateBody``, ``variables``, ``rejectionReason``.

Both parsers accept the raw body (``bytes``/``str``) or already-decoded JSON (a mapping). Any
problem raises :class:`~routee_viber_async.ValidationError` whose issues name the wire field
(``$.trackingId: required field is missing``) and never the offending value: a body may carry a
pin. Unknown fields are kept in ``extra`` and unknown statuses are kept as they came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias, TypeVar

from .. import _json
from .._converter import from_wire
from .._errors import ValidationError, ValidationIssue
from .._responses import DeliveryCallback, ModerationCallback
from .._validation import Code

__all__ = [
    "CallbackBody",
    "CallbackKind",
    "callback_kind",
    "parse_callback",
    "parse_delivery_callback",
    "parse_moderation_callback",
]

#: What the parsers accept: the raw request body, or JSON already decoded into a mapping.
CallbackBody: TypeAlias = bytes | bytearray | memoryview | str | Mapping[str, Any]

#: ``"delivery"`` or ``"moderation"``.
CallbackKind: TypeAlias = Literal["delivery", "moderation"]

_DELIVERY_KEYS: Final = ("trackingId", "status")
_MODERATION_KEYS: Final = ("templateId", "templateStatus")

_C = TypeVar("_C", DeliveryCallback, ModerationCallback)


def parse_delivery_callback(body: CallbackBody) -> DeliveryCallback:
    """Parse the delivery status callback POSTed to a send's ``callbackUrl``.

    Raises :class:`~routee_viber_async.ValidationError` for malformed JSON, a body that is not a
    JSON object, a missing ``trackingId`` or ``status`` (``status.name``), or a field of the
    wrong type.
    """
    return _parse(_load(body, "DeliveryCallback"), DeliveryCallback, "trackingId")


def parse_moderation_callback(body: CallbackBody) -> ModerationCallback:
    """Parse the moderation callback POSTed to a template's ``callbackUrl``.

    Raises :class:`~routee_viber_async.ValidationError` for malformed JSON, a body that is not a
    JSON object, a missing ``templateId`` or ``templateStatus``, or a field of the wrong type.
    """
    return _parse(_load(body, "ModerationCallback"), ModerationCallback, "templateId")


def parse_callback(body: CallbackBody) -> DeliveryCallback | ModerationCallback:
    """Parse either callback, telling them apart by their keys.

    A body with ``trackingId`` and ``status`` is a delivery callback; one with ``templateId`` and
    ``templateStatus`` is a moderation callback (delivery callbacks may carry a top-level
    ``templateId`` too, never ``templateStatus``). A body with only some of these keys is parsed
    as the kind they belong to, so the error names the missing one.
    """
    data = _load(body, "callback")
    kind = callback_kind(data)
    if kind == "delivery":
        return _parse(data, DeliveryCallback, "trackingId")
    if kind == "moderation":
        return _parse(data, ModerationCallback, "templateId")
    raise _invalid(
        "callback",
        "$",
        "neither a delivery callback (trackingId, status) "
        "nor a moderation callback (templateId, templateStatus)",
    )


def callback_kind(data: Mapping[str, Any]) -> CallbackKind | None:
    """Which callback a decoded body looks like, or None when it looks like neither."""
    if all(k in data for k in _DELIVERY_KEYS):
        return "delivery"
    if all(k in data for k in _MODERATION_KEYS):
        return "moderation"
    if "templateStatus" in data:
        return "moderation"
    if any(k in data for k in _DELIVERY_KEYS):
        return "delivery"
    if "templateId" in data:
        return "moderation"
    return None


def _load(body: object, what: str) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        data: object = body
    elif isinstance(body, bytes | bytearray | memoryview | str):
        if not body:
            raise _invalid(what, "$", "empty body")
        try:
            data = _json.loads(body)
        except _json.JSONDecodeError:
            raise _invalid(what, "$", "malformed JSON") from None
    else:
        raise _invalid(what, "$", f"expected bytes, str or a mapping, not {type(body).__name__}")
    if not isinstance(data, Mapping):
        raise _invalid(what, "$", f"expected a JSON object, not {_json_type(data)}")
    return data


def _parse(data: Mapping[str, Any], cl: type[_C], id_key: str) -> _C:
    parsed = from_wire(data, cl)
    ident = parsed.tracking_id if isinstance(parsed, DeliveryCallback) else parsed.template_id
    if not ident.strip():
        raise _invalid(cl.__name__, f"$.{id_key}", "must not be empty")
    return parsed


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _invalid(what: str, path: str, reason: str) -> ValidationError:
    issue = ValidationIssue(Code.INVALID_FIELD, f"{path}: {reason}")
    return ValidationError([issue], developer_message=f"invalid {what}: {issue.message}")
