"""Fuzzing the request models and the local validators with arbitrary strings and numbers.

Whatever a caller puts in a request (wrong types included: requests are plain attrs classes
that accept anything), ``issues()`` returns a list of issues and ``validate()`` raises our
``ValidationError`` or nothing: never a bare ``TypeError``, ``AttributeError`` or ``KeyError``.
A request that validates can always be encoded for the wire and masked, the masked view never
holds its pin, and no issue message repeats a parameter's value.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from routee_viber_async import (
    CreateTemplate,
    DeliveryScope,
    LegacyOtp,
    OtpParams,
    SendMessage,
    Template,
    TemplateCallbackUpdate,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    ValidationError,
    VarExample,
)
from routee_viber_async import _validation as v
from routee_viber_async._converter import dumps_wire, to_masked
from routee_viber_async._errors import ValidationIssue

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Interesting strings: the rules' edge cases next to arbitrary text.
EDGES = st.sampled_from(
    [
        "", " ", "en", "EN", "xx", "+306912345678", "+0123", "306912345678", "+3069123456789012",
        "https://hooks.example.com/x", "http://127.0.0.1:8080/cb", "http://example.com/x",
        "ftp://x", "https://", "http://[::1", "www.x.gr", "evil.com/x", "report.pdf",
        "PRIMARY_DEVICE", "ALL_DEVICES", "transactional", "promotional", "OTP", "Transactional",
        "TEXT", "{{pin}}", "Code {{pin}}", "{{ name }} {{x.y}}", "a@b", "pin",
    ]
)  # fmt: skip
TEXT = st.text(max_size=30) | EDGES
NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 2**53, 2**53 - 1])
)
#: What an untyped caller may pass for any field.
ANY = st.none() | st.booleans() | NUMBERS | TEXT
PINS = st.integers(min_value=0, max_value=10**9).map(lambda n: f"P{n}Q")
#: Names are mostly strings; an untyped caller may use others (refused, never sent).
PARAMS = st.dictionaries(TEXT | st.integers() | st.none(), ANY, max_size=4)


def _templates() -> st.SearchStrategy[Template]:
    return st.builds(
        Template,
        template_id=TEXT,
        category=st.sampled_from([TemplateCategory.OTP, TemplateCategory.TRANSACTIONAL, None]),
        params=st.lists(st.builds(TemplateParam, TEXT), max_size=3),
        locales=st.lists(st.builds(TemplateLocale, TEXT, TEXT), max_size=2),
    )


TEMPLATES = st.none() | _templates()


def _assert_issues(issues: Any) -> None:
    assert isinstance(issues, list)
    assert all(isinstance(i, ValidationIssue) for i in issues)
    assert all(isinstance(i.code, str) and isinstance(i.message, str) for i in issues)


def _assert_validate(request: Any, *args: Any) -> bool:
    issues = request.issues(*args)
    _assert_issues(issues)
    error: ValidationError | None = None
    try:
        request.validate(*args)
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert issues, "validate() raised while issues() found nothing"
        assert error.issues == issues
        return False
    assert not issues, "validate() passed while issues() found some"
    return True


@FUZZ
@given(
    sender=ANY, to=ANY, template_id=ANY, lang=ANY, params=PARAMS | ANY, pin=PINS,
    scope=ANY, seq=ANY, ttl=ANY, inbound=ANY, callback=ANY, label=ANY, msmid=ANY, session=ANY,
    template=TEMPLATES,
)  # fmt: skip
def test_send_message_any_values(
    sender: Any, to: Any, template_id: Any, lang: Any, params: Any, pin: str, scope: Any,
    seq: Any, ttl: Any, inbound: Any, callback: Any, label: Any, msmid: Any, session: Any,
    template: Template | None,
) -> None:  # fmt: skip
    if isinstance(params, dict):
        params = {**params, "pin": pin}
    message = SendMessage(
        sender, to, template_id, lang, params, scope, seq, ttl, inbound, callback, label, msmid,
        session,
    )  # fmt: skip
    valid = _assert_validate(message, template)
    for issue in message.issues(template):
        assert pin not in issue.message
    assert pin not in repr(message)
    if valid:
        wire = orjson.loads(dumps_wire(message))
        # Each value goes out as given: no NaN or infinity turned into null.
        assert None not in wire["templateParams"].values()
        assert pin not in orjson.dumps(to_masked(message)).decode()


OTP_PARAMS = st.builds(
    OtpParams,
    pin=st.none() | PINS | NUMBERS,
    business_platform_name=ANY,
    pin_type=ANY,
    code_validity_time=ANY,
    business_platform_action_name=ANY,
    code_reason=ANY,
)


@FUZZ
@given(
    sender=ANY, to=ANY, ttl=ANY, seq=ANY, label=ANY, scope=ANY, template_id=ANY,
    params=st.none() | OTP_PARAMS | PARAMS, pin=PINS, lang=ANY, template=TEMPLATES,
)  # fmt: skip
def test_legacy_otp_any_values(
    sender: Any, to: Any, ttl: Any, seq: Any, label: Any, scope: Any, template_id: Any,
    params: Any, pin: str, lang: Any, template: Template | None,
) -> None:  # fmt: skip
    if isinstance(params, dict):
        params = {**params, "pin": pin}
    elif isinstance(params, OtpParams) and isinstance(params.pin, str):
        pin = params.pin
    otp = LegacyOtp(sender, to, ttl, seq, label, scope, template_id, params, lang)
    valid = _assert_validate(otp, template)
    for issue in otp.issues(template):
        assert pin not in issue.message
    assert pin not in repr(otp)
    if valid:
        wire = orjson.loads(dumps_wire(otp))
        assert None not in wire.get("templateParams", {}).values()
        assert pin not in orjson.dumps(to_masked(otp)).decode()


# Names are strings here; names of other types are the cases at the end of this module.
@FUZZ
@given(
    category=ANY,
    params=st.lists(st.builds(TemplateParam, TEXT, ANY), max_size=3),
    locales=st.lists(st.builds(TemplateLocale, ANY, ANY), max_size=3),
    examples=st.lists(st.builds(VarExample, TEXT, ANY), max_size=3),
    callback=ANY,
    email=ANY,
)
def test_create_template_any_values(
    category: Any, params: Any, locales: Any, examples: Any, callback: Any, email: Any
) -> None:
    body = CreateTemplate(category, params, locales, examples, callback, email)
    if _assert_validate(body):
        orjson.loads(dumps_wire(body))


@FUZZ
@given(
    category=st.sampled_from(["OTP", "Transactional"]),
    names=st.lists(TEXT, max_size=3),
    locales=st.lists(st.tuples(TEXT, TEXT), max_size=3),
    examples=st.lists(TEXT, max_size=3),
    callback=st.none() | TEXT,
)
def test_create_template_any_strings(
    category: str,
    names: list[str],
    locales: list[tuple[str, str]],
    examples: list[str],
    callback: str | None,
) -> None:
    body = CreateTemplate(
        TemplateCategory(category),
        [TemplateParam(n) for n in names],
        [TemplateLocale(lang, text) for lang, text in locales],
        [VarExample(n, "x") for n in examples],
        callback,
    )
    if _assert_validate(body):
        orjson.loads(dumps_wire(body))


@FUZZ
@given(url=ANY)
def test_template_callback_update_any_value(url: Any) -> None:
    update = TemplateCallbackUpdate(url)
    issues = update.issues()  # (it has no validate(): templates.update_callback raises)
    _assert_issues(issues)
    if not issues:
        assert orjson.loads(dumps_wire(update)) == {"callbackUrl": url}


# -- the _validation checks ------------------------------------------------------------------

LISTS = st.lists(ANY, max_size=3)


@pytest.mark.parametrize(
    ("check", "arguments"),
    [
        (v.check_recipient, st.tuples(ANY)),
        (v.check_param_value, st.tuples(TEXT, ANY)),
        (v.check_callback_url, st.tuples(ANY, TEXT)),
        (v.check_lang, st.tuples(ANY, TEXT)),
        (v.check_delivery_scope, st.tuples(ANY)),
        (v.check_label, st.tuples(ANY)),
        (v.check_category, st.tuples(ANY)),
        (v.check_required_text, st.tuples(ANY, TEXT)),
        (v.check_optional_int, st.tuples(ANY, TEXT)),
    ],
    ids=lambda x: getattr(x, "__name__", "args"),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_check_returns_issues(check: Any, arguments: Any, data: st.DataObject) -> None:
    _assert_issues(check(*data.draw(arguments)))


@FUZZ
@given(
    params=st.dictionaries(ANY.filter(lambda x: x == x), ANY, max_size=4),  # keys: no NaN
    lang=ANY,
    declared=st.none() | LISTS,
    languages=st.none() | st.lists(TEXT, max_size=3),
    is_otp=st.booleans(),
)
def test_check_template_params_any_values(
    params: dict[Any, Any], lang: Any, declared: Any, languages: Any, is_otp: bool
) -> None:
    _assert_issues(
        v.check_template_params(
            params, lang=lang, declared=declared, languages=languages, is_otp=is_otp
        )
    )


@FUZZ
@given(
    category=ANY,
    params=st.lists(st.tuples(TEXT, ANY), max_size=3),
    locales=st.lists(st.tuples(ANY, ANY), max_size=3),
    examples=st.lists(TEXT, max_size=3),
    callback=ANY,
)
def test_check_template_definition_any_values(
    category: Any, params: Any, locales: Any, examples: Any, callback: Any
) -> None:
    _assert_issues(
        v.check_template_definition(
            category=category,
            params=params,
            locales=locales,
            var_example=examples,
            callback_url=callback,
        )
    )


@FUZZ
@given(text=TEXT, host=st.none() | TEXT)
def test_placeholders_and_loopback_never_raise(text: str, host: str | None) -> None:
    assert all(isinstance(name, str) for name in v.placeholders(text))
    assert isinstance(v.is_loopback_host(host), bool)


@FUZZ
@given(name=TEXT, value=PINS.map(lambda p: p + ".pdf") | PINS.map(lambda p: p + " www.x.gr"))
def test_issue_messages_never_repeat_a_value(name: str, value: str) -> None:
    issues = v.check_param_value(name, value) + v.check_param_value(name, value * 3)
    assert issues
    for issue in issues:
        assert value not in issue.message


# -- values of the wrong type --------------------------------------------------------------


@pytest.mark.parametrize("params", ["0", False, 5, ["pin"]], ids=repr)
def test_legacy_otp_params_that_are_not_a_mapping(params: Any) -> None:
    otp = LegacyOtp("sender", "+306912345678", template_params=params)
    with pytest.raises(ValidationError, match="templateParams"):
        otp.validate()


@pytest.mark.parametrize(
    ("params", "examples"),
    [
        ([TemplateParam(1)], [VarExample("1", "x")]),
        ([TemplateParam("a")], [VarExample(None, "x"), VarExample(True, "y")]),
    ],
    ids=["int-name", "mixed-example-names"],
)  # fmt: skip
def test_create_template_with_names_that_are_not_strings(
    params: list[TemplateParam], examples: list[VarExample]
) -> None:
    body = CreateTemplate(
        TemplateCategory.TRANSACTIONAL, params, [TemplateLocale("en", "Hi {{a}}")], examples
    )
    with pytest.raises(ValidationError):
        body.validate()


# -- sends near the edges of the rules ---------------------------------------------------------

#: Templates a send may be checked against: what the template-aware rules look at.
EDGE_TEMPLATES = [
    None,
    Template(
        template_id="tpl-1",
        category=TemplateCategory.OTP,
        params=[TemplateParam("pin"), TemplateParam("minutes")],
        locales=[TemplateLocale("en", "{{pin}} {{minutes}}")],
    ),
    Template(
        template_id="tpl-1",
        category=TemplateCategory.OTP,
        params=[TemplateParam("minutes")],
        locales=[TemplateLocale("en", "{{minutes}}"), TemplateLocale("el", "{{minutes}}")],
    ),
    Template(
        template_id="tpl-1",
        category=TemplateCategory.TRANSACTIONAL,
        params=[TemplateParam("name")],
        locales=[TemplateLocale("el", "{{name}}")],
    ),
]

#: Per field, values at the edges of its rules, valid or not.
EDGE_VALUES: dict[str, list[Any]] = {
    "sender_info_tracking_id": ["x", " ", "", "\u2003", 5, None, "\u200b" * 25, "\ufeff", "Σ"],
    "to": ["+3069123", "+306912345678901", "+0691234567", "+306912345678\n", "306912345678"],
    "template_id": ["0", " ", "", 7, "\u200b", "\u2060\u00ad"],
    "template_lang": ["el", "\t", "", "xx", None, "\u200b"],
    "delivery_scope": [DeliveryScope.ALL_DEVICES, DeliveryScope("FUTURE"), "ALL_DEVICES", 3],
    "seq": [0, 7, 2**53 - 1, 2**53, -1, True, 7.0, "7"],
    "ttl": [1, 0, 3600, False, -5, 2.0, 2**63 - 1, 2**63, 2**70],
    "callback_url": ["https://hooks.example.com/x", "http://example.com/x", ""],
    "inbound_url": ["https://hooks.example.com/x", "ftp://x"],
}
EDGE_PARAM_VALUES = [
    "a" * 25, "a" * 26, " ", "", "x.y", "a:b", "report.pdf", "see evil.com/x", "www.x.gr",
    "mailto:x", 5, 2.5, None, True,
    # checked as a reader sees them (NFKC, no format characters), counted in UTF-16 units
    "\u200b" * 25, "\u200b \u200d", "evil\uff0ecom", "test\u200d.pdf", "https\uff1a\uff0f\uff0fx",
    "\U0001f600" * 13, "\U0001f600" * 12 + "a", "a" * 24 + "\U0001f600", "Ωμέγα", "4\ud8002",
    # numbers the wire cannot carry
    2**64, -(2**63) - 1, 2**63 - 1, float("nan"), float("inf"),
]  # fmt: skip


def _edge(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``values`` three times in four, anything otherwise."""
    return st.integers(0, 3).flatmap(lambda i: ANY if i == 0 else st.sampled_from(values))


def _near_valid_params(data: st.DataObject, names: list[str]) -> Any:
    """Valid values for ``names``, then perhaps one value changed, one name added or dropped,
    or the mapping itself replaced by another kind of mapping or by anything else."""
    params: dict[Any, Any] = dict.fromkeys(names, "123456")
    change = data.draw(st.sampled_from(["none", "value", "add", "drop", "kind"]))
    if change == "kind":
        return data.draw(st.sampled_from([MappingProxyType(params), list(params)]) | ANY)
    if change == "value" and params:
        name = data.draw(st.sampled_from(sorted(params)))
        params[name] = data.draw(_edge(EDGE_PARAM_VALUES))
    elif change == "add":
        names = st.sampled_from(["pin", "minutes", "name", "other", 1, None, ("pin",), b"pin"])
        params[data.draw(names | TEXT)] = "1"
    elif change == "drop" and params:
        del params[data.draw(st.sampled_from(sorted(params)))]
    return params


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_send_near_the_edges_of_the_rules(data: st.DataObject) -> None:
    """A valid send with up to two fields moved to an edge of their rules: validate() raises
    exactly what issues() finds, and a send it accepts can be encoded and masked."""
    template = data.draw(st.sampled_from(EDGE_TEMPLATES))
    names = ["pin", "minutes"] if template is None else template.param_names
    fields: dict[str, Any] = {
        "sender_info_tracking_id": "RouteeBench",
        "to": "+306912345678",
        "template_id": "tpl-1",
        "template_lang": "en" if template is None else template.languages[0],
        "template_params": _near_valid_params(data, names),
    }
    for name in data.draw(st.lists(st.sampled_from(sorted(EDGE_VALUES)), max_size=2)):
        fields[name] = data.draw(_edge(EDGE_VALUES[name]))
    message = SendMessage(**fields)
    accepted = _assert_validate(message, template)
    event(f"accepted: {accepted}")
    if accepted:
        orjson.loads(dumps_wire(message))
        to_masked(message)


def test_a_rule_added_to_issues_applies_to_every_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate() has no rule set of its own: a common, valid send is checked by issues()."""
    template = EDGE_TEMPLATES[1]
    assert template is not None
    message = SendMessage(
        "RouteeBench", "+306912345678", "tpl-1", "en", {"pin": "123456", "minutes": "5"}
    )
    original = SendMessage.issues

    def with_a_new_rule(self: SendMessage, template: Template | None = None) -> list[Any]:
        return [*original(self, template), ValidationIssue("NEW_RULE", "a rule added later")]

    monkeypatch.setattr(SendMessage, "issues", with_a_new_rule)
    for checked_against in (None, template):
        with pytest.raises(ValidationError) as caught:
            message.validate(checked_against)
        assert [i.code for i in caught.value.issues] == ["NEW_RULE"]


def test_a_subclass_adding_rules_is_checked_by_them() -> None:
    """The one pass knows SendMessage's rules only: a subclass's own ``issues()`` still runs."""

    @attrs.frozen
    class NoWeekendSends(SendMessage):
        def issues(self, template: Template | None = None) -> list[ValidationIssue]:
            return [*super().issues(template), ValidationIssue("NO_WEEKENDS", "not today")]

    message = NoWeekendSends("RouteeBench", "+306912345678", "tpl-1", "en", {"pin": "123456"})
    with pytest.raises(ValidationError) as caught:
        message.validate()
    assert [i.code for i in caught.value.issues] == ["NO_WEEKENDS"]
