"""The cattrs converters between the attrs models and the wire's camelCase JSON.

Hooks are generated per class with the ``cattrs.gen`` factories:

- attribute names become camelCase (``tracking_id`` → ``trackingId``), ``from_`` → ``from``, and
  a field may name its own key and value codec (the legacy OTP ``type``);
- unset optional fields are omitted;
- datetimes are ISO-8601 (``...Z`` on the way out; ISO strings or epoch numbers on the way in);
- unknown keys of a response are kept in its ``extra`` mapping and written back out;
- structuring errors of any kind become our :class:`ValidationError`, naming the wire field.

``WIRE`` structures without cattrs' detailed validation: every answer goes through it, and the
error bookkeeping would be paid on answers that are fine. When it fails, the same data is run
through a detailed converter, whose errors name each field that is wrong (cattrs' own advice).

``MASKED`` writes secrets (``pin``, OAuth material) as ``***``: it is what logs, results files
and journals use. Only ``WIRE`` (``to_wire``/``dumps_wire``) carries the real values, and only
the HTTP body is built from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_origin

import attrs
import cattrs
from cattrs.cols import is_sequence, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.orjson import make_converter

from . import _json
from ._enums import OpenEnum
from ._errors import ValidationError, ValidationIssue
from ._fields import ALWAYS, CODEC, SECRET, WIRE_NAME
from ._masking import MASK, mask_secrets
from ._validation import Code

__all__ = [
    "MASKED",
    "WIRE",
    "dumps_wire",
    "from_wire",
    "to_masked",
    "to_wire",
    "wire_name",
    "wire_parser",
]

T = TypeVar("T")

_CAMEL = re.compile(r"_([a-z0-9])")


@cache
def _camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name.rstrip("_"))


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The JSON key of an attrs field."""
    explicit = field.metadata.get(WIRE_NAME)
    return explicit if explicit is not None else _camel(field.name)


def _is_extra(field: attrs.Attribute[Any]) -> bool:
    return field.name == "extra"


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return value.isoformat(timespec="milliseconds")


# Each scalar's hook is written for ``X | None`` (None passes, in one call, as most of Routee's
# fields are optional); the hook of a required ``X`` is the same one refusing None first.


def _structure_optional_datetime(value: Any, _: type) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # epoch seconds, or milliseconds for values past the year 5138 in seconds
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    raise TypeError("expected an ISO-8601 timestamp")


def _structure_optional_str(value: Any, _: type) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ids Routee sends as numbers (serviceId, ...)
    raise TypeError("expected a string")


# What a JSON number can carry back out (orjson writes 64-bit integers only).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _structure_optional_int(value: Any, _: type) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().lstrip("-").isdigit()
    ):
        number = int(value)
    else:
        raise TypeError("expected an integer")
    if not _INT_MIN <= number <= _INT_MAX:
        raise TypeError("expected an integer within 64 bits")
    return number


def _structure_optional_float(value: Any, _: type) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError("expected a number")


def _structure_optional_bool(value: Any, _: type) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError("expected true or false")


def _required(
    structure_optional: Callable[[Any, Any], Any], expected: str
) -> Callable[[Any, Any], Any]:
    """The hook of a required field: ``structure_optional``, refusing None."""

    def structure(value: Any, cl: Any) -> Any:
        if value is None:
            raise TypeError(f"expected {expected}")
        return structure_optional(value, cl)

    return structure


_SCALARS: dict[type, tuple[Callable[[Any, Any], Any], str]] = {
    datetime: (_structure_optional_datetime, "an ISO-8601 timestamp"),
    str: (_structure_optional_str, "a string"),
    int: (_structure_optional_int, "an integer"),
    float: (_structure_optional_float, "a number"),
    bool: (_structure_optional_bool, "true or false"),
}


def _is_open_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, OpenEnum)


@cache
def _optional_open_enum_structure(cl: type[OpenEnum]) -> Callable[[Any, Any], Any]:
    # A listed value is looked up by value; ``cl(value)`` (Enum's call machinery, which ends in
    # the same lookup) is left for values this version does not list.
    listed = {member.value: member for member in cl}

    def structure(value: Any, _: Any) -> OpenEnum | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError("expected a string")
        member = listed.get(value)
        return cl(value) if member is None else member

    return structure


def _structure_open_enum(value: Any, cl: type[OpenEnum]) -> OpenEnum:
    if value is None:
        raise TypeError("expected a string")
    return _optional_open_enum_structure(cl)(value, cl)  # type: ignore[no-any-return]


def _structure_mapping(value: Any, _: type) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("expected an object")
    return dict(value)


def _structure_any(value: Any, _: type) -> Any:
    return value


def _identity(value: Any) -> Any:
    return value


def _build(*, masked: bool, detailed: bool) -> cattrs.Converter:
    """A converter that writes secrets masked or as they are, with or without cattrs' detailed
    validation (which only words errors: both build the same objects)."""
    conv = make_converter(omit_if_default=True, detailed_validation=detailed)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    for scalar, (structure_optional, expected) in _SCALARS.items():
        conv.register_structure_hook(scalar, _required(structure_optional, expected))
    conv.register_structure_hook(Any, _structure_any)
    # Registered by class (not predicate) so that it beats the ``str`` hook for the subclasses.
    conv.register_unstructure_hook(OpenEnum, _identity)
    conv.register_unstructure_hook_func(_is_optional_open_enum, _identity)  # None is None too
    conv.register_structure_hook(OpenEnum, _structure_open_enum)
    conv.register_structure_hook_factory(is_sequence, lambda t: _strict_sequence(conv, t))
    conv.register_structure_hook_func(_is_str_mapping, _structure_mapping)
    conv.register_unstructure_hook_func(_is_str_mapping, _unstructure_mapping)
    conv.register_structure_hook_func(_is_params_union, _structure_mapping)
    conv.register_structure_hook_factory(_is_optional, lambda t: _optional_structure(conv, t))
    conv.register_unstructure_hook_factory(attrs.has, lambda cl: _unstructure_fn(conv, cl, masked))
    conv.register_structure_hook_factory(attrs.has, lambda cl: _structure_fn(conv, cl))
    return conv


def _strict_sequence(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    # cattrs accepts any iterable for a list: a JSON string would become a list of characters.
    structure_items = list_structure_factory(t, conv)

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError("expected an array")
        return structure_items(value, cl)

    return structure


def _is_optional(t: Any) -> bool:
    args = getattr(t, "__args__", ())
    return len(args) == 2 and NoneType in args and get_origin(t) in (Union, UnionType)


def _optional_structure(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    # Our hooks refuse None, so ``X | None`` lets None through before them: in the scalar's and
    # the enum's own hook, else before the hook of ``X``.
    inner = _non_none(t)
    scalar = _SCALARS.get(inner)
    if scalar is not None:
        return scalar[0]
    if _is_open_enum(inner):
        return _optional_open_enum_structure(inner)
    structure_inner = conv.get_structure_hook(inner)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else structure_inner(value, inner)

    return structure


def _is_optional_open_enum(t: Any) -> bool:
    return _is_optional(t) and _is_open_enum(_non_none(t))


def _non_none(t: Any) -> Any:
    """``X`` of ``X | None``."""
    return next(arg for arg in t.__args__ if arg is not NoneType)


def _is_str_mapping(t: Any) -> bool:
    origin = getattr(t, "__origin__", None)
    return origin in (Mapping, dict) and getattr(t, "__args__", (None,))[0] is str


def _is_params_union(t: Any) -> bool:
    # LegacyOtp.template_params: OtpParams | Mapping[str, ...] | None
    args = getattr(t, "__args__", ())
    return any(attrs.has(a) for a in args) and any(_is_str_mapping(a) for a in args)


def _unstructure_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)  # JSON-ready as it is


def _unstructure_fn(
    conv: cattrs.Converter, cl: type[Any], masked: bool
) -> Callable[[Any], dict[str, Any]]:
    overrides: dict[str, Any] = {}
    has_extra = False
    for field in attrs.fields(cl):
        if _is_extra(field):
            overrides[field.name] = override(omit=True)
            has_extra = True
            continue
        hook: Callable[[Any], Any] | None = None
        codec = field.metadata.get(CODEC)
        if codec is not None:
            hook = codec[0]
        if field.metadata.get(SECRET):
            hook = _unstructure_secret_value(conv, masked)
        # Required fields are always written, even when None (the PATCH body's callbackUrl).
        required = field.default is attrs.NOTHING or field.metadata.get(ALWAYS)
        omit = False if required else None
        overrides[field.name] = override(
            rename=wire_name(field), unstruct_hook=hook, omit_if_default=omit
        )
    base = make_dict_unstructure_fn(cl, conv, _cattrs_omit_if_default=True, **overrides)
    if not has_extra:
        return base
    mask = mask_secrets if masked else _identity

    def unstructure_with_extra(obj: Any) -> dict[str, Any]:
        out = base(obj)
        if obj.extra:
            out.update(mask(obj.extra))
        return out

    return unstructure_with_extra


def _unstructure_secret_value(conv: cattrs.Converter, masked: bool) -> Callable[[Any], Any]:
    def unstructure(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Mapping):  # template parameters
            value = _unstructure_mapping(value)
            return mask_secrets(value) if masked else value
        if attrs.has(type(value)):
            return mask_secrets(conv.unstructure(value)) if masked else conv.unstructure(value)
        return MASK if masked else value  # a pin itself

    return unstructure


def _codec_hook(decode: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        return decode(value)

    return structure


def _structure_fn(conv: cattrs.Converter, cl: type[T]) -> Callable[[Any, type[T]], T]:
    """cattrs' generated hook for ``cl``, with Routee's key aliases read and the keys ``cl``
    does not know kept in its ``extra``."""
    overrides: dict[str, Any] = {}
    known: set[str] = set()
    has_extra = False
    for field in attrs.fields(cl):  # type: ignore[arg-type]  # only called for attrs classes
        if _is_extra(field):
            # Read from the "extra" key, which ``structure`` below sets to the unknown keys.
            overrides[field.name] = override(rename="extra", struct_hook=_structure_any)
            has_extra = True
            continue
        name = wire_name(field)
        known.add(name)
        codec = field.metadata.get(CODEC)
        hook = None if codec is None else _codec_hook(codec[1])
        overrides[field.name] = override(rename=name, struct_hook=hook)
    base = make_dict_structure_fn(cl, conv, **overrides)
    aliases: Mapping[str, str] = getattr(cl, "__wire_aliases__", {})
    known.update(aliases)
    known_keys = frozenset(known)

    def structure(data: Any, _: type[T]) -> T:
        # Decoded JSON objects are dicts: the ABC check is for the other mappings callers pass.
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {cl.__name__}")
        if aliases:
            for alias, target in aliases.items():
                if alias in data and target not in data:
                    data = {**data, target: data[alias]}
        if has_extra and not known_keys.issuperset(data):
            # An "extra" key on the wire is unknown too: it is kept inside the new value.
            unknown = {k: v for k, v in data.items() if k not in known_keys}
            data = {**data, "extra": unknown}
        return base(data, cl)

    return structure


WIRE = _build(masked=False, detailed=False)
MASKED = _build(masked=True, detailed=False)
#: Only to word an error: the same hooks, with cattrs' notes on which field failed.
_DETAILED = _build(masked=False, detailed=True)


def to_wire(obj: Any) -> Any:
    """The JSON-ready value of a model as it goes on the wire (real secrets)."""
    return WIRE.unstructure(obj)


def dumps_wire(obj: Any) -> bytes:
    """The JSON bytes of a request body."""
    return _json.dumps(WIRE.unstructure(obj))


def to_masked(obj: Any) -> Any:
    """The JSON-ready value of a model with every secret written as ``***``."""
    return MASKED.unstructure(obj)


def from_wire(data: Any, cl: type[T]) -> T:
    """Structure decoded JSON into ``cl``; any problem raises :class:`ValidationError`."""
    try:
        return WIRE.structure(data, cl)
    except Exception:  # KeyError, TypeError, ValueError, ...: the detailed run says where
        raise _invalid(data, cl) from None


def wire_parser(cl: type[T]) -> Callable[[Any], T]:
    """``from_wire(data, cl)`` as a function of ``data`` alone, with the hook looked up once
    (for an answer parsed on every send)."""
    structure = WIRE.get_structure_hook(cl)

    def parse(data: Any) -> T:
        try:
            return structure(data, cl)  # type: ignore[no-any-return]
        except Exception:  # as in from_wire
            raise _invalid(data, cl) from None

    return parse


def _invalid(data: Any, cl: type[Any]) -> ValidationError:
    """The error for ``data`` that ``cl`` cannot be built from, naming each wrong field."""
    try:
        _DETAILED.structure(data, cl)
    except Exception as exc:  # a cattrs group of every field's error, KeyError, TypeError, ...
        found = _describe(exc, "$")
    else:  # both converters run the same hooks: this is not expected
        found = [("$", "invalid value")]
    issues = [ValidationIssue(Code.INVALID_FIELD, f"{path}: {reason}") for path, reason in found]
    return ValidationError(issues, developer_message=_summary(cl, issues))


def _summary(cl: type[Any], issues: list[ValidationIssue]) -> str:
    return f"invalid {cl.__name__}: " + "; ".join(i.message for i in issues)


def _describe(exc: BaseException, path: str) -> list[tuple[str, str]]:
    if isinstance(exc, BaseValidationError):
        found: list[tuple[str, str]] = []
        for inner in exc.exceptions:
            found += _describe(inner, _inner_path(exc, inner, path))
        return found
    if isinstance(exc, KeyError):
        return [(path, "required field is missing")]
    return [(path, _reason(exc))]


def _inner_path(group: BaseValidationError, inner: BaseException, path: str) -> str:
    for note in getattr(inner, "__notes__", ()):
        if isinstance(note, AttributeValidationNote) and isinstance(group, ClassValidationError):
            fields = {f.name: f for f in attrs.fields(group.cl)} if attrs.has(group.cl) else {}
            field = fields.get(note.name)
            return f"{path}.{wire_name(field) if field is not None else note.name}"
        if isinstance(note, IterableValidationNote) and isinstance(group, IterableValidationError):
            return f"{path}[{note.index!r}]"
    return path


def _reason(exc: BaseException) -> str:
    # Never echo the offending value: it may be a pin.
    if isinstance(exc, TypeError | ValueError) and exc.args and isinstance(exc.args[0], str):
        text = exc.args[0]
        if text.startswith("expected "):
            return text
    return f"invalid value ({type(exc).__name__})"
