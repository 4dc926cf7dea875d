"""Fuzzing the parsers: every model's ``from_wire`` and the webhook parsers (issue #9).

``tests/test_converter.py`` throws arbitrary JSON at the top-level response models. Here the
JSON is shaped like each model (its own wire keys, nested models, plausible and implausible
values), so the fuzzer reaches past the first missing key into every field hook, and every
attrs model is covered: responses, their nested parts, and the requests the command line
structures from files. Whatever comes in, the only error is our ``ValidationError``; whatever
is accepted can be written back, masked, and never shows a planted pin.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import routee_viber_async as rva
from routee_viber_async import (
    DeliveryCallback,
    ModerationCallback,
    ValidationError,
    _converter,
    _requests,
    _responses,
    _template_parts,
)
from routee_viber_async._converter import from_wire, to_masked, to_wire, wire_name, wire_parser
from routee_viber_async.webhooks import (
    parse_callback,
    parse_delivery_callback,
    parse_moderation_callback,
)

#: Every wire model: requests, responses and their nested parts.
MODELS: list[type[Any]] = sorted(
    (
        getattr(rva, name)
        for name in [*_requests.__all__, *_responses.__all__, *_template_parts.__all__]
    ),
    key=lambda cl: cl.__name__,
)
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Integers the wire can carry (orjson writes 64-bit integers). Larger ones are refused:
# test_a_huge_integer_is_refused_or_written_back below.
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# -- strategies --------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
TIMESTAMPS = (
    st.datetimes().map(lambda d: d.isoformat())
    | st.just("2024-05-01T10:00:00.000Z")
    | st.integers(min_value=-(10**13), max_value=10**13)
    | st.floats(min_value=-1e14, max_value=1e14)
    | st.text(max_size=30)
)
PINS = st.integers(min_value=0, max_value=10**9).map(lambda n: f"P{n}Q")


def _plausible(tp: Any, depth: int) -> st.SearchStrategy[Any]:
    """Values of the field's own type (mostly valid ones), or None."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([_plausible(a, depth) for a in args])
    if tp is type(None):
        return st.none()
    if tp is str:
        return st.text(max_size=20)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return INT64 | INT64.map(str) | st.just(" 12 ")
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(["1.5", "x"])
    if tp is datetime:
        return TIMESTAMPS
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from([m.value for m in tp]) | st.text(max_size=10)
    if isinstance(tp, type) and attrs.has(tp):
        return model_dicts(tp, depth + 1) if depth < 3 else st.just({})
    if origin in (list, Sequence):
        return st.lists(_plausible(args[0], depth), max_size=3)
    if origin in (dict, Mapping):
        return st.dictionaries(st.text(max_size=8), JSON, max_size=3)
    return JSON


def _field_values(tp: Any, depth: int) -> st.SearchStrategy[Any]:
    # Nine in ten values have the field's type; the rest is any JSON at all.
    return st.one_of(_plausible(tp, depth), _plausible(tp, depth), JSON)


def model_dicts(cl: type[Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like ``cl``: its wire keys (some missing), odd values, extra keys."""
    optional = {
        wire_name(f): _field_values(f.type, depth) for f in attrs.fields(cl) if f.name != "extra"
    }
    aliases: Mapping[str, str] = getattr(cl, "__wire_aliases__", {})
    for alias, target in aliases.items():
        optional[alias] = optional[target]
    shaped = st.fixed_dictionaries({}, optional=optional)
    extra = st.dictionaries(st.text(max_size=8), JSON, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, shaped, extra)


def _attempt(call: Any, *args: Any) -> tuple[Any, ValidationError | None]:
    """``call(*args)`` and None, or None and the ``ValidationError`` it raised (nothing else)."""
    try:
        return call(*args), None
    except ValidationError as exc:
        return None, exc


def _check_accepted(obj: Any, cl: type[Any]) -> None:
    assert isinstance(obj, cl)
    repr(obj)
    orjson.dumps(to_wire(obj))
    orjson.dumps(to_masked(obj))


# -- from_wire, every model ---------------------------------------------------------------------


def test_every_model_is_fuzzed() -> None:
    names = {cl.__name__ for cl in MODELS}
    assert {"SendResult", "TrackingStatus", "CallbackStatus", "TemplateInfo", "OtpParams"} <= names
    assert {"CreateTemplate", "SendMessage", "LegacyOtp", "TemplateCallbackUpdate"} <= names
    assert len(MODELS) >= 18


def _plant(body: Any, pin: str, where: int) -> Any:
    """``body`` with ``{"pin": pin}`` put into its template parameters, or somewhere else."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    spot = where % 5
    if spot == 4:
        return body  # no pin at all
    if spot == 0:
        body["templateParams"] = {"pin": pin, "name": "x"}
    elif spot == 1:
        tt = body.get("transactionalTemplate")
        tt = dict(tt) if isinstance(tt, dict) else {}
        tt["templateParams"] = {"pin": pin}
        body["transactionalTemplate"] = tt
    elif spot == 2:
        body["somethingNew"] = [{"deeper": {"pin": pin}}]
    else:
        body["pin"] = pin
    return body


@pytest.mark.parametrize("cl", MODELS, ids=lambda cl: cl.__name__)
@FUZZ
@given(data=st.data(), pin=PINS, where=st.integers(0, 4))
def test_from_wire_any_json_shaped_like_each_model(
    cl: type[Any], data: st.DataObject, pin: str, where: int
) -> None:
    """Only ``ValidationError``; accepted values are written, masked and read back; no pin."""
    body = _plant(data.draw(model_dicts(cl) | JSON, label="body"), pin, where)
    obj, error = _attempt(from_wire, body, cl)
    if error is not None:
        assert error.issues
        assert all(issue.message.startswith("$") for issue in error.issues), error.issues
        assert pin not in str(error)
        assert pin not in repr(error)
        return
    assert isinstance(obj, cl)
    masked = orjson.dumps(to_masked(obj)).decode()
    assert pin not in masked
    assert pin not in repr(obj)
    assert pin not in str(obj)
    # Written out, read back and written again: the same JSON (timestamps are written to the
    # millisecond, so the first write may round; after that nothing changes).
    wire = orjson.loads(orjson.dumps(to_wire(obj)))
    again = from_wire(wire, cl)
    assert orjson.loads(orjson.dumps(to_wire(again))) == wire


def _structured_by(conv: Any, body: Any, cl: type[Any]) -> tuple[Any, bool]:
    """What ``conv`` makes of ``body``: the object, or None and False when it refuses it."""
    try:
        return conv.structure(body, cl), True
    except Exception:
        return None, False


@pytest.mark.parametrize("cl", MODELS, ids=lambda cl: cl.__name__)
@FUZZ
@given(data=st.data())
def test_the_detailed_converter_agrees_with_the_fast_one(
    cl: type[Any], data: st.DataObject
) -> None:
    """The detailed converter only words the fast one's errors: it must accept and refuse the
    same bodies, and build the same objects."""
    body = data.draw(model_dicts(cl) | JSON, label="body")
    assert _structured_by(_converter.WIRE, body, cl) == _structured_by(
        _converter._DETAILED, body, cl
    )


def _parsed_by(parse: Any, *args: Any) -> tuple[Any, Any]:
    try:
        return parse(*args), None
    except ValidationError as exc:
        return None, exc.issues


@pytest.mark.parametrize("cl", MODELS, ids=lambda cl: cl.__name__)
@FUZZ
@given(data=st.data())
def test_a_bound_wire_parser_agrees_with_from_wire(cl: type[Any], data: st.DataObject) -> None:
    """``wire_parser(cl)`` skips from_wire's lookups for a plain answer: same object, same
    issues, for anything."""
    body = data.draw(model_dicts(cl) | JSON, label="body")
    assert _parsed_by(wire_parser(cl), body) == _parsed_by(from_wire, body, cl)


# -- the webhook parsers --------------------------------------------------------------------------

PARSERS = {
    "delivery": (parse_delivery_callback, DeliveryCallback),
    "moderation": (parse_moderation_callback, ModerationCallback),
    "any": (parse_callback, (DeliveryCallback, ModerationCallback)),
}
CALLBACK_DICTS = model_dicts(DeliveryCallback) | model_dicts(ModerationCallback)
BODIES = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60),
    CALLBACK_DICTS,
    CALLBACK_DICTS.map(orjson.dumps),
    CALLBACK_DICTS.map(lambda d: orjson.dumps(d).decode()),
    CALLBACK_DICTS.map(lambda d: bytearray(orjson.dumps(d))),
    CALLBACK_DICTS.map(lambda d: memoryview(orjson.dumps(d))),
    JSON,
    JSON.map(orjson.dumps),
    st.builds(object),
    st.dictionaries(st.integers(), JSON, max_size=2),  # a dict whose keys are not strings
)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, pin=PINS, where=st.integers(0, 3))
def test_webhook_parsers_only_raise_validation_error(
    kind: str, body: Any, pin: str, where: int
) -> None:
    parse, expected = PARSERS[kind]
    if isinstance(body, dict) and all(isinstance(k, str) for k in body):
        body = _plant(body, pin, where)
    parsed, error = _attempt(parse, body)
    if error is not None:
        assert error.issues
        assert pin not in str(error)
        return
    assert isinstance(parsed, expected)
    repr(parsed)
    orjson.dumps(to_masked(parsed), option=orjson.OPT_NON_STR_KEYS)
    assert pin not in repr(parsed)
    assert pin not in orjson.dumps(to_masked(parsed), option=orjson.OPT_NON_STR_KEYS).decode()


@pytest.mark.parametrize(
    "seq", ["1e20", '"18446744073709551616"', '"-9223372036854775809"'], ids=["float", "str", "neg"]
)
def test_a_huge_integer_is_refused_or_written_back(seq: str) -> None:
    body = (
        '{"trackingId": "t-1", "status": {"name": "DELIVERED"},'
        f' "transactionalTemplate": {{"seq": {seq}}}}}'
    )
    try:
        callback = parse_delivery_callback(body)
    except ValidationError:
        return  # refusing it is fine
    orjson.dumps(to_masked(callback))  # accepting it means it can be logged and written
