"""JSON Schemas of the callback bodies, generated from the models and the converter's wire names.

The schemas say what the parsers accept: required fields, types, ``status.name`` and the other
open enums with their known values listed (``examples``) without forbidding new ones, and extra
keys allowed (they are kept in ``extra``). The FastAPI router documents its request bodies with
them, so ``/docs`` and a property-based tester see the real payloads.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from .._converter import wire_name
from .._enums import OpenEnum
from .._responses import DeliveryCallback, ModerationCallback

__all__ = ["callback_json_schema", "json_schema"]

#: The integers every JSON implementation keeps exact (I-JSON, RFC 7493): a subset of what the
#: converter takes (64 bits), and ample for ``seq`` (a millisecond timestamp).
_INT_BOUNDS: Final = {"minimum": -(2**53 - 1), "maximum": 2**53 - 1}

#: The identifier fields the parsers refuse when blank.
_NON_BLANK: Final[Mapping[type, str]] = {
    DeliveryCallback: "trackingId",
    ModerationCallback: "templateId",
}


def callback_json_schema(kind: str) -> dict[str, Any]:
    """The body schema of an endpoint: ``"delivery"``, ``"moderation"`` or ``"any"`` (either)."""
    if kind == "delivery":
        return json_schema(DeliveryCallback)
    if kind == "moderation":
        return json_schema(ModerationCallback)
    if kind == "any":
        moderation = json_schema(ModerationCallback)
        # A body with both trackingId and status is read as a delivery callback (callback_kind).
        moderation["not"] = {"required": ["trackingId", "status"]}
        return {"anyOf": [json_schema(DeliveryCallback), moderation]}
    raise ValueError(f"unknown callback kind {kind!r}")


def json_schema(cl: type) -> dict[str, Any]:
    """The JSON Schema of an attrs model as it travels on the wire."""
    attrs.resolve_types(cl)  # a no-op once resolved (the package resolves its models)
    non_blank: Collection[str] = (_NON_BLANK[cl],) if cl in _NON_BLANK else ()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cl):
        if field.name == "extra":
            continue
        name = wire_name(field)
        field_schema = _type_schema(field.type)
        if name in non_blank:
            field_schema = {**field_schema, "pattern": r"\S"}
        properties[name] = field_schema
        if field.default is attrs.NOTHING:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "title": cl.__name__}
    if cl.__doc__:
        schema["description"] = cl.__doc__.strip().splitlines()[0]
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = True  # unknown keys are kept in ``extra``
    return schema


def _type_schema(t: Any) -> dict[str, Any]:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a) for a in args if a is not type(None)]
        nullable = type(None) in args
        if len(options) == 1 and "anyOf" in options[0]:  # an optional open enum: one anyOf
            inner = options[0]
            return {**inner, "anyOf": [*inner["anyOf"], {"type": "null"}]} if nullable else inner
        if nullable:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin in (list, Collection, typing.Sequence) or (origin is not None and _is_list(origin)):
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is not None and _is_mapping(origin):
        return {"type": "object"}
    if t is Any:
        return {}
    if isinstance(t, type):
        return _class_schema(t)
    raise TypeError(f"no JSON Schema for {t!r}")


def _class_schema(t: type) -> dict[str, Any]:
    if issubclass(t, OpenEnum):
        known = [member.value for member in t]
        # An open enum: the known values are listed, any other string is accepted too.
        return {"anyOf": [{"enum": known}, {"type": "string"}], "examples": known}
    if issubclass(t, bool):
        return {"type": "boolean"}
    if issubclass(t, int):
        return {"type": "integer", **_INT_BOUNDS}
    if issubclass(t, float):
        return {"type": "number"}
    if issubclass(t, str):
        return {"type": "string"}
    if issubclass(t, datetime):
        return {"type": "string", "format": "date-time"}
    if attrs.has(t):
        return json_schema(t)
    raise TypeError(f"no JSON Schema for {t!r}")


def _is_list(origin: type) -> bool:
    return isinstance(origin, type) and issubclass(origin, list)


def _is_mapping(origin: type) -> bool:
    return isinstance(origin, type) and issubclass(origin, Mapping)
