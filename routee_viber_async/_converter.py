"""The one cattrs converter between the attrs models and the wire's camelCase JSON.

Hooks are generated per class with the ``cattrs.gen`` factories:

- attribute names become camelCase (``tracking_id`` → ``trackingId``), ``from_`` → ``from``, and
  a field may name its own key and value codec (the legacy OTP ``type``);
- unset optional fields are omitted;
- datetimes are ISO-8601 (``...Z`` on the way out; ISO strings or epoch numbers on the way in);
- unknown keys of a response are kept in its ``extra`` mapping and written back out;
- structuring errors of any kind become our :class:`ValidationError`, naming the wire field.

``MASKED`` is the same converter with secrets (``pin``, OAuth material) written as ``***``: it is
what logs, results files and journals use. Only ``WIRE`` (``to_wire``/``dumps_wire``) carries the
real values, and only the HTTP body is built from it.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache, partial
from types import MemberDescriptorType, NoneType, UnionType
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


_fromisoformat = datetime.fromisoformat


def _structure_datetime(value: Any, _: type) -> datetime:
    if type(value) is str:  # the wire's case, first
        return _fromisoformat(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise TypeError("expected an ISO-8601 timestamp")
    if isinstance(value, int | float):
        # epoch seconds, or milliseconds for values past the year 5138 in seconds
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise TypeError("expected an ISO-8601 timestamp")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ids Routee sends as numbers (serviceId, ...)
    raise TypeError("expected a string")


# What a JSON number can carry back out (orjson writes 64-bit integers only).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _structure_int(value: Any, _: type) -> int:
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


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError("expected a number")


#: Structure hooks that return any value of exactly this type unchanged.
_PASSTHROUGH: dict[Callable[..., Any], type] = {
    _structure_str: str,
    _structure_int: int,
    _structure_float: float,
}


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError("expected true or false")


def _structure_open_enum(value: Any, cl: type[OpenEnum]) -> OpenEnum:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    # A listed value is a dict lookup; ``cl(value)`` (the same lookup behind Enum's generic
    # call machinery, then ``_missing_``) only for values this version does not list.
    member = cl._value2member_map_.get(value)
    return member if member is not None else cl(value)  # type: ignore[return-value]


def _structure_mapping(value: Any, _: type) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("expected an object")
    return dict(value)


def _structure_any(value: Any, _: type) -> Any:
    return value


def _build(masked: bool, *, fast_path: bool = True) -> cattrs.Converter:
    """A converter; ``fast_path=False`` leaves out the fast structure path (for its tests)."""
    conv = make_converter(omit_if_default=True, detailed_validation=True)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(Any, _structure_any)
    # Registered by class (not predicate) so they beat the ``str`` hooks for these subclasses.
    conv.register_unstructure_hook(OpenEnum, _identity)
    conv.register_unstructure_hook_func(_is_optional_open_enum, _identity)  # None is None too
    conv.register_structure_hook(OpenEnum, _structure_open_enum)
    conv.register_structure_hook_factory(is_sequence, lambda t: _strict_sequence(conv, t))
    conv.register_structure_hook_func(_is_str_mapping, _structure_mapping)
    conv.register_unstructure_hook_func(_is_str_mapping, _unstructure_mapping)
    conv.register_structure_hook_func(_is_params_union, _structure_mapping)
    conv.register_structure_hook_factory(_is_optional, lambda t: _optional_structure(conv, t))
    conv.register_unstructure_hook_factory(attrs.has, lambda cl: _unstructure_fn(conv, cl, masked))
    conv.register_structure_hook_factory(
        attrs.has, lambda cl: _structure_fn(conv, cl, fast_path=fast_path)
    )
    return conv


def _strict_sequence(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    # cattrs accepts any iterable for a list: a JSON string would become a list of characters.
    structure_items = list_structure_factory(t, conv)

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError("expected an array")
        return structure_items(value, cl)

    return structure


#: Structure hooks that take ``None`` to ``None`` (an absent key can be fed to them as ``None``),
#: with what the generated fast path needs to inline their common case: ``(kind, detail)``.
_NONE_SAFE: dict[Callable[[Any, Any], Any], tuple[str, Any]] = {_structure_any: ("any", None)}


def _is_optional(t: Any) -> bool:
    args = getattr(t, "__args__", ())
    return len(args) == 2 and NoneType in args and get_origin(t) in (Union, UnionType)


def _optional_structure(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    # cattrs' own ``X | None`` hook looks up the hook of ``X`` on every call; ours looks it up
    # once, when the class hook is generated (all our hooks are registered by then).
    first, second = t.__args__
    inner = second if first is NoneType else first
    structure_inner = conv.get_structure_hook(inner)
    exact = _PASSTHROUGH.get(structure_inner)
    if exact is not None and exact is inner:
        # Our str/int/float hooks return a value of exactly that type as it is: let it (and
        # None) through without calling them.

        def structure_plain(value: Any, _: Any) -> Any:
            if value is None or type(value) is exact:
                return value
            return structure_inner(value, exact)

        _NONE_SAFE[structure_plain] = ("exact", exact)
        return structure_plain

    if structure_inner is _structure_open_enum:
        # A listed value of an optional enum (most response fields) in one call.
        listed = inner._value2member_map_

        def structure_enum(value: Any, _: Any) -> Any:
            if value is None:
                return None
            member = listed.get(value) if type(value) is str else None
            return member if member is not None else _structure_open_enum(value, inner)

        _NONE_SAFE[structure_enum] = ("enum", listed)
        return structure_enum

    if structure_inner is _structure_datetime:

        def structure_datetime(value: Any, _: Any) -> Any:
            if value is None:
                return None
            if type(value) is str:
                return _fromisoformat(value)
            return _structure_datetime(value, inner)

        _NONE_SAFE[structure_datetime] = ("datetime", None)
        return structure_datetime

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else structure_inner(value, inner)

    _NONE_SAFE[structure] = ("optional", (structure_inner, inner))
    return structure


def _is_optional_open_enum(t: Any) -> bool:
    if not _is_optional(t):
        return False
    inner = next(arg for arg in t.__args__ if arg is not NoneType)
    return isinstance(inner, type) and issubclass(inner, OpenEnum)


def _is_str_mapping(t: Any) -> bool:
    origin = getattr(t, "__origin__", None)
    return origin in (Mapping, dict) and getattr(t, "__args__", (None,))[0] is str


def _is_params_union(t: Any) -> bool:
    # LegacyOtp.template_params: OtpParams | Mapping[str, ...] | None
    args = getattr(t, "__args__", ())
    return any(attrs.has(a) for a in args) and any(_is_str_mapping(a) for a in args)


def _unstructure_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)


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
        if type(value) is dict:  # the common case (template parameters), first
            return mask_secrets(value) if masked else value
        if isinstance(value, str | int | float):
            return MASK if masked else value  # a pin itself
        if attrs.has(type(value)):
            value = conv.unstructure(value)  # OtpParams: its own pin field is secret too
        elif type(value) is not dict:
            value = dict(value)
        return mask_secrets(value) if masked else value

    return unstructure


def _codec_hook(decode: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        return decode(value)

    return structure


def _identity(value: Any) -> Any:
    return value


def _structure_fn(
    conv: cattrs.Converter, cl: type[T], *, fast_path: bool
) -> Callable[[Any, type[T]], T]:
    overrides: dict[str, Any] = {}
    hooks: dict[str, Callable[[Any, Any], Any]] = {}
    known: set[str] = set()
    has_extra = False
    for field in attrs.fields(cl):  # type: ignore[arg-type]  # only called for attrs classes
        if _is_extra(field):
            overrides[field.name] = override(omit=True)
            has_extra = True
            continue
        name = wire_name(field)
        known.add(name)
        codec = field.metadata.get(CODEC)
        if codec is not None:
            hooks[field.name] = _codec_hook(codec[1])
            overrides[field.name] = override(rename=name, struct_hook=hooks[field.name])
        else:
            overrides[field.name] = override(rename=name)
    base = make_dict_structure_fn(cl, conv, **overrides)
    aliases: Mapping[str, str] = getattr(cl, "__wire_aliases__", {})
    known.update(aliases)
    known_keys = frozenset(known)
    fast = _fast_structure_fn(conv, cl, hooks, has_extra) if fast_path and not aliases else None

    def structure(data: Any, _: type[T]) -> T:
        if fast is not None and type(data) is dict:
            try:
                if not has_extra or known_keys.issuperset(data):
                    return fast(data, None)
                return fast(data, {k: v for k, v in data.items() if k not in known_keys})
            except Exception:  # the detailed path below says what is wrong
                pass
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {cl.__name__}")
        if aliases:
            for alias, target in aliases.items():
                if alias in data and target not in data:
                    data = {**data, target: data[alias]}
        obj = base(data, cl)
        if has_extra and not known_keys.issuperset(data):
            extra = {k: v for k, v in data.items() if k not in known_keys}
            obj = attrs.evolve(obj, extra=extra)  # type: ignore[misc]
        return obj

    if fast is not None:
        _NESTED_FAST[structure] = (fast, known_keys if has_extra else None)
    return structure


#: A class hook's fast path and the keys it knows (None: it keeps no extras), for the fast path
#: of a class holding one: a nested object is built without going through its class hook.
_NESTED_FAST: dict[Callable[..., Any], tuple[Callable[..., Any], frozenset[str] | None]] = {}


def _fast_structure_fn(
    conv: cattrs.Converter,
    cl: type[T],
    hooks: Mapping[str, Callable[[Any, Any], Any]],
    has_extra: bool,
) -> Callable[[dict[str, Any], dict[str, Any] | None], T] | None:
    """The happy path of a class's structure hook, generated once per class.

    cattrs' detailed hook collects every field into a dict of keyword arguments, with error
    bookkeeping around each, and calls ``__init__``. This one reads each key into a local with
    the common case of its hook inlined (a value of exactly the field's type, ``None``, a listed
    enum value, an ISO timestamp) and the hook called for anything else, then builds the
    object. A class whose ``__init__`` is attrs' own and does nothing but store (no validators,
    converters or init hooks; slotted) is built by storing into its slots directly: a frozen
    class's ``__init__`` stores through ``object.__setattr__``, which costs twice as much (a
    send answer: 3.1 -> 2.1 µs). It raises on anything wrong, and the caller then runs the
    detailed hook, which says what. Classes whose optional fields have defaults other than
    ``None`` keep the detailed hook only.
    """
    fields = attrs.fields(cl)  # type: ignore[arg-type]  # only called for attrs classes
    slots = _slot_setters(cl, fields)
    namespace: dict[str, Any] = {"_cl": cl, "_new": object.__new__, "_iso": _fromisoformat}
    lines = [f"def structure_{cl.__name__}(o, extra):", "    get = o.get"]
    for i, field in enumerate(fields):
        if _is_extra(field):
            continue
        if not field.init or (field.default is not attrs.NOTHING and field.default is not None):
            return None
        hook = hooks.get(field.name) or conv.get_structure_hook(field.type)
        namespace[f"_h{i}"] = hook
        namespace[f"_t{i}"] = field.type
        required = field.default is attrs.NOTHING
        lines.extend(_field_lines(i, wire_name(field), required, hook, namespace))
    lines.extend(_build_lines(fields, slots, has_extra, namespace))
    source = "\n".join(lines) + "\n"
    filename = f"<routee_viber_async fast structure {cl.__module__}.{cl.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # our own generated source, as cattrs does
    return namespace[f"structure_{cl.__name__}"]  # type: ignore[no-any-return]


def _build_lines(
    fields: tuple[attrs.Attribute[Any], ...],
    slots: list[Callable[[Any, Any], None]] | None,
    has_extra: bool,
    namespace: dict[str, Any],
) -> list[str]:
    """Source lines that build the object from the locals ``a{i}``: by storing into its slots,
    or (``slots`` None) through its ``__init__``."""
    if slots is not None:
        lines = ["    obj = _new(_cl)"]
        for i, field in enumerate(fields):
            namespace[f"_s{i}"] = slots[i]
            if _is_extra(field):
                namespace["_extra_factory"] = field.default.factory  # type: ignore[union-attr]
                lines.append(f"    _s{i}(obj, _extra_factory() if extra is None else extra)")
            else:
                lines.append(f"    _s{i}(obj, a{i})")
        return [*lines, "    return obj"]
    values = [(i, field) for i, field in enumerate(fields) if not _is_extra(field)]
    positional = [f"a{i}" for i, field in values if not field.kw_only]
    keyword = [f"{field.alias}=a{i}" for i, field in values if field.kw_only]
    args = ", ".join(positional + keyword)
    lines = []
    if has_extra:
        lines.append(f"    if extra is not None: return _cl({args}, extra=extra)")
    return [*lines, f"    return _cl({args})"]


def _field_lines(
    i: int, key: str, required: bool, hook: Callable[[Any, Any], Any], namespace: dict[str, Any]
) -> list[str]:
    """Source lines that read wire key ``key`` into the local ``a{i}`` (hook ``_h{i}``)."""
    kind: str
    detail: Any
    nested = _NESTED_FAST.get(hook)
    if nested is not None:  # a required nested object
        value = _nested_expression(i, nested, namespace, fallback=f"_h{i}(v, _t{i})")
        return [f"    v = o[{key!r}]", f"    a{i} = {value}"]
    if hook in _NONE_SAFE:
        kind, detail = _NONE_SAFE[hook]
    elif hook in _PASSTHROUGH:
        kind, detail = "required exact", _PASSTHROUGH[hook]
    elif required:
        return [f"    a{i} = _h{i}(o[{key!r}], _t{i})"]
    else:
        return [f"    a{i} = _h{i}(o[{key!r}], _t{i}) if {key!r} in o else None"]
    read = f"    v = o[{key!r}]" if required else f"    v = get({key!r})"
    if kind == "any":
        return [read, f"    a{i} = v"]
    if kind == "required exact":
        namespace[f"_x{i}"] = detail
        return [read, f"    a{i} = v if type(v) is _x{i} else _h{i}(v, _t{i})"]
    if kind == "exact":
        namespace[f"_x{i}"] = detail
        return [read, f"    a{i} = v if v is None or type(v) is _x{i} else _h{i}(v, _t{i})"]
    if kind == "enum":  # the listed member, else the hook (which also gets a falsy member right)
        namespace[f"_l{i}"] = detail
        return [read, f"    a{i} = None if v is None else (_l{i}.get(v) or _h{i}(v, _t{i}))"]
    if kind == "datetime":
        return [
            read,
            f"    a{i} = None if v is None else (_iso(v) if type(v) is str else _h{i}(v, _t{i}))",
        ]
    namespace[f"_i{i}"], namespace[f"_it{i}"] = detail  # "optional": the inner hook and type
    nested = _NESTED_FAST.get(detail[0])
    if nested is not None:
        value = _nested_expression(i, nested, namespace, fallback=f"_i{i}(v, _it{i})")
        return [read, f"    a{i} = None if v is None else {value}"]
    return [read, f"    a{i} = None if v is None else _i{i}(v, _it{i})"]


def _nested_expression(
    i: int,
    nested: tuple[Callable[..., Any], frozenset[str] | None],
    namespace: dict[str, Any],
    *,
    fallback: str,
) -> str:
    """The nested class's fast path for a plain dict it knows every key of, else ``fallback``
    (its class hook, which also keeps unknown keys and says what is wrong)."""
    namespace[f"_f{i}"], namespace[f"_k{i}"] = nested
    known = f" and _k{i}.issuperset(v)" if nested[1] is not None else ""
    return f"(_f{i}(v, None) if type(v) is dict{known} else {fallback})"


def _slot_setters(
    cl: type[Any], fields: tuple[attrs.Attribute[Any], ...]
) -> list[Callable[[Any, Any], None]] | None:
    """Each field's slot setter, when building ``cl`` by storing into its slots is what its
    ``__init__`` does (attrs' own, no validator, converter or init hook); else None."""
    init = cl.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        return None
    if any(hasattr(cl, name) for name in ("__attrs_pre_init__", "__attrs_post_init__")):
        return None
    setters = []
    for field in fields:
        if field.validator is not None or field.converter is not None:
            return None
        if _is_extra(field) and (
            getattr(field.default, "factory", None) is None
            or getattr(field.default, "takes_self", True)
        ):
            return None  # the fast path fills ``extra`` from its plain factory
        slot = next((k.__dict__[field.name] for k in cl.__mro__ if field.name in k.__dict__), None)
        if type(slot) is not MemberDescriptorType:
            return None
        setters.append(slot.__set__)
    return setters


WIRE = _build(masked=False)
MASKED = _build(masked=True)


_UNSTRUCTURE_HOOKS: dict[type[Any], Callable[[Any], Any]] = {}


def to_wire(obj: Any) -> Any:
    """The JSON-ready value of a model as it goes on the wire (real secrets)."""
    cls = obj.__class__
    hook = _UNSTRUCTURE_HOOKS.get(cls)
    if hook is None:  # ``WIRE.unstructure`` would look the hook up on every call
        hook = _UNSTRUCTURE_HOOKS[cls] = WIRE.get_unstructure_hook(cls)
    return hook(obj)


def dumps_wire(obj: Any) -> bytes:
    """The JSON bytes of a request body."""
    return _json.dumps(to_wire(obj))


def to_masked(obj: Any) -> Any:
    """The JSON-ready value of a model with every secret written as ``***``."""
    return MASKED.unstructure(obj)


_STRUCTURE_HOOKS: dict[Any, Callable[[Any, Any], Any]] = {}


def from_wire(data: Any, cl: type[T]) -> T:
    """Structure decoded JSON into ``cl``; any problem raises :class:`ValidationError`."""
    hook = _STRUCTURE_HOOKS.get(cl)
    if hook is None:  # ``WIRE.structure`` would look the hook up on every call
        hook = _STRUCTURE_HOOKS[cl] = WIRE.get_structure_hook(cl)
    try:
        return hook(data, cl)  # type: ignore[no-any-return]
    except ValidationError:
        raise
    except Exception as exc:  # cattrs groups, KeyError, TypeError, ValueError, ...
        issues = [
            ValidationIssue(Code.INVALID_FIELD, f"{path}: {reason}")
            for path, reason in _describe(exc, "$")
        ]
        raise ValidationError(issues, developer_message=_summary(cl, issues)) from None


def wire_parser(cl: type[T]) -> Callable[[Any], T]:
    """``from_wire(data, cl)`` as a function of ``data`` alone, for an answer parsed once per
    send: a plain dict whose keys ``cl`` all knows goes straight to the class's generated fast
    path, without the lookups and the wrapper around it; anything else to :func:`from_wire`."""
    fast, known = _NESTED_FAST.get(WIRE.get_structure_hook(cl), (None, None))
    if fast is None:
        return partial(_from_wire_of, cl)

    def parse(data: Any) -> T:
        if type(data) is dict and (known is None or known.issuperset(data)):
            try:
                return fast(data, None)  # type: ignore[no-any-return]
            except Exception:  # from_wire says what is wrong
                pass
        return from_wire(data, cl)

    return parse


def _from_wire_of(cl: type[T], data: Any) -> T:
    return from_wire(data, cl)


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
