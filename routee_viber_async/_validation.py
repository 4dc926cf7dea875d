r"""Routee's request rules, checked locally before any network call.

The issue codes are the seed's own (``PARAM_VALUE_TOO_LONG``, ``MISSING_PARAM``, ...); rules the
seeds state without a code get a code of ours (``INVALID_RECIPIENT``, ...). Messages name fields
and parameters, never their values, so that a pin cannot leak through an error.

The same checks serve the client (before sending) and the sandbox (as the server's rules).

Text is checked as a reader sees it (:func:`visible_text`): format characters such as zero-width
spaces are dropped and the rest NFKC-normalised before the URL, file-name and blank checks, so
that ``evil\uff0ecom`` (a full-width dot) counts as a domain and ``test\u200d.pdf`` (a zero-width
joiner) as a file name. That form serves the checks only: what goes on the wire is the value as
given. Lengths are counted in UTF-16 code units (:func:`utf16_length`), as Java and JavaScript
count a string's length: Routee's published limit says "characters" without saying which, and
this count is never below the number of characters (an emoji beyond U+FFFF counts two).
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._enums import DeliveryScope, Label, OpenEnum, TemplateCategory
from ._errors import ValidationError, ValidationIssue

__all__ = [
    "DELIVERY_SCOPES",
    "E164",
    "INT64_MAX",
    "INT64_MIN",
    "ISO_639_1",
    "MAX_PARAM_LENGTH",
    "Code",
    "check_callback_url",
    "check_category",
    "check_delivery_scope",
    "check_label",
    "check_lang",
    "check_optional_int",
    "check_param_entries",
    "check_param_value",
    "check_positive_number",
    "check_recipient",
    "check_required_text",
    "check_template_definition",
    "check_template_params",
    "fill_placeholders",
    "is_blank",
    "is_loopback_host",
    "placeholders",
    "raise_if",
    "utf16_length",
    "visible_text",
]

#: The longest parameter value, in UTF-16 code units (see the module's docstring).
MAX_PARAM_LENGTH = 25

#: The integers a request may carry: what fits a signed 64-bit integer (Routee's platform is
#: Java, whose ``long`` is signed; orjson cannot write an integer beyond 64 bits at all).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Code:
    """Validation issue codes: the seed's, then ours for rules the seeds state without one."""

    # seed 001, "Send-time validation"
    TEMPLATE_LANG_REQUIRED = "TEMPLATE_LANG_REQUIRED"
    TEMPLATE_LANG_MISMATCH = "TEMPLATE_LANG_MISMATCH"
    MISSING_PARAM = "MISSING_PARAM"
    UNKNOWN_PARAM = "UNKNOWN_PARAM"
    PARAM_VALUE_TOO_LONG = "PARAM_VALUE_TOO_LONG"
    PARAM_CONTAINS_URL = "PARAM_CONTAINS_URL"
    PARAM_CONTAINS_FILE_EXTENSION = "PARAM_CONTAINS_FILE_EXTENSION"
    OTP_PIN_REQUIRED = "OTP_PIN_REQUIRED"
    # ours
    FIELD_REQUIRED = "FIELD_REQUIRED"
    INVALID_FIELD = "INVALID_FIELD"
    INVALID_RECIPIENT = "INVALID_RECIPIENT"
    INVALID_DELIVERY_SCOPE = "INVALID_DELIVERY_SCOPE"
    INVALID_LABEL = "INVALID_LABEL"
    INVALID_LANG = "INVALID_LANG"
    INVALID_CALLBACK_URL = "INVALID_CALLBACK_URL"
    INVALID_CATEGORY = "INVALID_CATEGORY"
    INVALID_PARAM_TYPE = "INVALID_PARAM_TYPE"
    LOCALE_REQUIRED = "LOCALE_REQUIRED"
    DUPLICATE_LOCALE = "DUPLICATE_LOCALE"
    DUPLICATE_PARAM = "DUPLICATE_PARAM"
    OTP_PIN_PLACEHOLDER_REQUIRED = "OTP_PIN_PLACEHOLDER_REQUIRED"
    UNDECLARED_PLACEHOLDER = "UNDECLARED_PLACEHOLDER"
    UNUSED_PARAM = "UNUSED_PARAM"
    VAR_EXAMPLE_MISMATCH = "VAR_EXAMPLE_MISMATCH"


# E.164: "+", a country code that does not start with 0, 7 to 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# Extensions that make a value look like a file name (seed: "test.pdf").
_FILE_EXTENSIONS = (
    "pdf|docx?|xlsx?|pptx?|odt|ods|odp|rtf|txt|csv|tsv|xml|json|ya?ml|log|md|"
    "zip|rar|7z|tar|gz|tgz|bz2|xz|"
    "exe|msi|apk|ipa|dmg|iso|bin|bat|cmd|sh|ps1|jar|dll|scr|vbs|"
    "jpe?g|png|gif|bmp|tiff?|webp|svg|heic|ico|"
    "mp3|wav|ogg|flac|aac|m4a|mp4|m4v|mov|avi|mkv|wmv|webm|"
    "html?|php|aspx?|jsp|js|css"
)
_FILE_NAME = re.compile(rf"[\w\-]\.(?:{_FILE_EXTENSIONS})(?![\w.])", re.IGNORECASE)

# URL-like content: a scheme, "www.", or a bare domain ("evil.com/x", "pay.example.org").
_SCHEME = re.compile(r"\b[a-z][a-z0-9+.\-]*://|\b(?:mailto|tel|sms|viber|whatsapp):", re.IGNORECASE)
_WWW = re.compile(r"\bwww\d?\.", re.IGNORECASE)
_DOMAIN_WITH_PATH = re.compile(r"\b[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}[/:?#]", re.IGNORECASE)
_COMMON_TLDS = (
    "com|net|org|info|biz|io|co|me|ly|app|dev|xyz|online|site|shop|store|link|click|top|"
    "gr|cy|uk|de|fr|it|es|nl|eu|ru|cn|in|us|ca|au|br|il|tr|pl|ro|bg|ua|ch|at|be|se|no|dk|fi|"
    "pt|ie|cz|hu|sk|jp|kr|tv|cc|ws|to|gl|gg|gd|su|live|pro|club|vip|win|bit"
)
_BARE_DOMAIN = re.compile(
    rf"\b[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9\-]+)*\.(?:{_COMMON_TLDS})(?![\w])",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


def _known_strings(enum: type[OpenEnum]) -> frozenset[str]:
    """The wire values an enum lists."""
    return frozenset(member.value for member in enum)


DELIVERY_SCOPES = _known_strings(DeliveryScope)
_LABELS = _known_strings(Label)
_CATEGORIES = _known_strings(TemplateCategory)

#: ISO 639-1 two-letter language codes.
ISO_639_1 = frozenset(
    [
        "aa",
        "ab",
        "ae",
        "af",
        "ak",
        "am",
        "an",
        "ar",
        "as",
        "av",
        "ay",
        "az",
        "ba",
        "be",
        "bg",
        "bh",
        "bi",
        "bm",
        "bn",
        "bo",
        "br",
        "bs",
        "ca",
        "ce",
        "ch",
        "co",
        "cr",
        "cs",
        "cu",
        "cv",
        "cy",
        "da",
        "de",
        "dv",
        "dz",
        "ee",
        "el",
        "en",
        "eo",
        "es",
        "et",
        "eu",
        "fa",
        "ff",
        "fi",
        "fj",
        "fo",
        "fr",
        "fy",
        "ga",
        "gd",
        "gl",
        "gn",
        "gu",
        "gv",
        "ha",
        "he",
        "hi",
        "ho",
        "hr",
        "ht",
        "hu",
        "hy",
        "hz",
        "ia",
        "id",
        "ie",
        "ig",
        "ii",
        "ik",
        "io",
        "is",
        "it",
        "iu",
        "ja",
        "jv",
        "ka",
        "kg",
        "ki",
        "kj",
        "kk",
        "kl",
        "km",
        "kn",
        "ko",
        "kr",
        "ks",
        "ku",
        "kv",
        "kw",
        "ky",
        "la",
        "lb",
        "lg",
        "li",
        "ln",
        "lo",
        "lt",
        "lu",
        "lv",
        "mg",
        "mh",
        "mi",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "na",
        "nb",
        "nd",
        "ne",
        "ng",
        "nl",
        "nn",
        "no",
        "nr",
        "nv",
        "ny",
        "oc",
        "oj",
        "om",
        "or",
        "os",
        "pa",
        "pi",
        "pl",
        "ps",
        "pt",
        "qu",
        "rm",
        "rn",
        "ro",
        "ru",
        "rw",
        "sa",
        "sc",
        "sd",
        "se",
        "sg",
        "si",
        "sk",
        "sl",
        "sm",
        "sn",
        "so",
        "sq",
        "sr",
        "ss",
        "st",
        "su",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "ti",
        "tk",
        "tl",
        "tn",
        "to",
        "tr",
        "ts",
        "tt",
        "tw",
        "ty",
        "ug",
        "uk",
        "ur",
        "uz",
        "ve",
        "vi",
        "vo",
        "wa",
        "wo",
        "xh",
        "yi",
        "yo",
        "za",
        "zh",
        "zu",
    ]
)


def raise_if(issues: list[ValidationIssue]) -> None:
    """Raise a :class:`ValidationError` carrying ``issues`` when there are any."""
    if issues:
        raise ValidationError(issues)


def check_recipient(to: object, field: str = "to") -> list[ValidationIssue]:
    """``to`` must be E.164: ``+``, a country code not starting with 0, 7 to 15 digits."""
    if not isinstance(to, str) or not to:
        return [ValidationIssue(Code.FIELD_REQUIRED, f"{field} is required (E.164, e.g. +30...)")]
    if E164.fullmatch(to) is None:
        return [
            ValidationIssue(
                Code.INVALID_RECIPIENT,
                f"{field} must be an E.164 number: '+', a country code, 7 to 15 digits in all",
            )
        ]
    return []


def visible_text(text: str) -> str:
    r"""``text`` as a reader sees it, for the checks: format characters (Unicode category Cf:
    zero-width spaces and joiners, the BOM, bidirectional controls, soft hyphens) dropped, then
    NFKC-normalised (full-width ``evil\uff0ecom`` becomes ``evil.com``)."""
    if text.isascii():  # the common case: ASCII has no format character and is NFKC already
        return text
    shown = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", shown)


def is_blank(value: object) -> bool:
    """True for a string with nothing visible in it (spaces, zero-width spaces, ...)."""
    if not isinstance(value, str):
        return False
    if value.isascii():  # its own visible form (see visible_text)
        return not value.strip()
    return not visible_text(value).strip()


def utf16_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (characters beyond U+FFFF count two).

    Raises ``UnicodeEncodeError`` for a lone surrogate, which no JSON encoder can send.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _number_issue(name: str, value: int | float) -> list[ValidationIssue]:
    """A number the wire cannot carry: NaN and infinities (JSON has none), integers beyond 64
    bits."""
    if isinstance(value, float) and not math.isfinite(value):
        problem = "must be a finite number (not NaN or infinity)"
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        problem = "must be an integer within 64 bits"
    else:
        return []
    return [ValidationIssue(Code.INVALID_PARAM_TYPE, f"Parameter {name} {problem}.")]


def check_param_value(name: str, value: object) -> list[ValidationIssue]:
    """The seed's TEXT parameter rules for one value: length, no URL, no file name.

    The length counts UTF-16 code units of the value as given; the URL and file-name checks
    look at its :func:`visible_text`.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return [
            ValidationIssue(Code.INVALID_PARAM_TYPE, f"Parameter {name} must be a string or number")
        ]
    else:
        number_issues = _number_issue(name, value)
        if number_issues:
            return number_issues
        text = str(value)
    if text.isascii():  # its own visible form, one UTF-16 unit per character
        length = len(text)
    else:
        try:
            length = utf16_length(text)
        except UnicodeEncodeError:
            return [
                ValidationIssue(
                    Code.INVALID_PARAM_TYPE,
                    f"Parameter {name} must be valid Unicode text (it holds a lone surrogate).",
                )
            ]
        text = visible_text(text)
    issues = []
    if length > MAX_PARAM_LENGTH:
        issues.append(
            ValidationIssue(
                Code.PARAM_VALUE_TOO_LONG,
                f"Parameter {name} must be at most {MAX_PARAM_LENGTH} characters.",
            )
        )
    if "." not in text and ":" not in text:
        return issues  # every URL, domain and file name has one or the other
    if _looks_like_url(text):
        issues.append(
            ValidationIssue(
                Code.PARAM_CONTAINS_URL, f"Parameter {name} must not contain a URL or domain."
            )
        )
    elif "." in text and _FILE_NAME.search(text):  # the pattern needs a dot
        issues.append(
            ValidationIssue(
                Code.PARAM_CONTAINS_FILE_EXTENSION,
                f"Parameter {name} must not look like a file name or extension (e.g. test.pdf).",
            )
        )
    return issues


def check_param_entries(params: Mapping[Any, Any]) -> list[ValidationIssue]:
    """Every parameter of a ``templateParams`` mapping: string names, values by
    :func:`check_param_value`."""
    issues: list[ValidationIssue] = []
    for name, value in params.items():
        if isinstance(name, str):
            issues += check_param_value(name, value)
        else:  # the name is not echoed: only strings are names
            issues.append(
                ValidationIssue(
                    Code.INVALID_PARAM_TYPE,
                    f"templateParams names must be strings, not {type(name).__name__}.",
                )
            )
    return issues


def _looks_like_url(text: str) -> bool:
    return bool(
        _SCHEME.search(text)
        or _WWW.search(text)
        or _DOMAIN_WITH_PATH.search(text)
        or _BARE_DOMAIN.search(text)
    )


def placeholders(text: str) -> list[str]:
    """The ``{{name}}`` placeholders of a template text, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


def fill_placeholders(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with each ``{{name}}`` replaced by ``values[name]`` (kept when it has none)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(value, text)


def check_template_params(
    params: Mapping[str, Any] | None,
    *,
    lang: object,
    declared: Iterable[str] | None = None,
    languages: Iterable[str] | None = None,
    is_otp: bool = False,
) -> list[ValidationIssue]:
    """Send-time checks of ``templateLang`` and ``templateParams``.

    With the template's ``declared`` parameter names, its ``languages`` and whether it ``is_otp``
    (known when the caller holds the template), the template-aware checks run too.
    """
    issues: list[ValidationIssue] = []
    params = params or {}
    if not isinstance(lang, str) or is_blank(lang):
        issues.append(ValidationIssue(Code.TEMPLATE_LANG_REQUIRED, "templateLang is required."))
    elif languages is not None and lang not in languages:
        issues.append(
            ValidationIssue(
                Code.TEMPLATE_LANG_MISMATCH,
                f"templateLang {lang} does not match a locale of the template.",
            )
        )
    issues += check_param_entries(params)
    if declared is not None:
        declared_names = dict.fromkeys(declared)  # in order, without repeats
        for name in declared_names:
            value = params.get(name)
            if value is None or is_blank(value):
                issues.append(
                    ValidationIssue(Code.MISSING_PARAM, f"Parameter {name} is missing or blank.")
                )
        for name in params:
            if isinstance(name, str) and name not in declared_names:  # (others: named above)
                issues.append(
                    ValidationIssue(
                        Code.UNKNOWN_PARAM, f"Parameter {name} is not declared on the template."
                    )
                )
    if is_otp:
        pin = params.get("pin")
        if pin is None or is_blank(pin):
            issues.append(
                ValidationIssue(
                    Code.OTP_PIN_REQUIRED, "OTP-category templates require templateParams.pin."
                )
            )
    return issues


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` (and ``*.localhost``, reserved to loopback by RFC 6761) and for
    loopback addresses (127.0.0.0/8, ``::1``, ``::ffff:127.x.x.x``).

    An address is parsed, never matched by prefix: ``127.evil.com`` is a name like any other.
    """
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_callback_url(url: object, field: str) -> list[ValidationIssue]:
    """Callback URLs are HTTPS; plain HTTP only for loopback hosts (local receivers, sandbox)."""
    if url is None:
        return []
    reason = None
    if not isinstance(url, str):
        reason = "must be a string URL"
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or not host:
            reason = "must be an absolute https URL"
        elif parts.scheme == "http" and not is_loopback_host(host):
            reason = "must use https (http is allowed only for loopback hosts)"
        elif parts.scheme not in ("https", "http"):
            reason = "must be an absolute https URL"
    if reason is None:
        return []
    return [ValidationIssue(Code.INVALID_CALLBACK_URL, f"{field} {reason}.")]


def check_lang(lang: object, field: str) -> list[ValidationIssue]:
    """A language code must be a two-letter ISO 639-1 code."""
    if isinstance(lang, str) and lang in ISO_639_1:
        return []
    return [ValidationIssue(Code.INVALID_LANG, f"{field} must be an ISO 639-1 code such as en.")]


def check_delivery_scope(scope: object, field: str = "deliveryScope") -> list[ValidationIssue]:
    """``deliveryScope`` is PRIMARY_DEVICE or ALL_DEVICES."""
    if scope is None or (isinstance(scope, str) and scope in DELIVERY_SCOPES):
        return []
    return [
        ValidationIssue(
            Code.INVALID_DELIVERY_SCOPE, f"{field} must be PRIMARY_DEVICE or ALL_DEVICES."
        )
    ]


def check_label(label: object, field: str = "label") -> list[ValidationIssue]:
    """``label`` is transactional or promotional."""
    if label is None or (isinstance(label, str) and label in _LABELS):
        return []
    return [ValidationIssue(Code.INVALID_LABEL, f"{field} must be transactional or promotional.")]


def check_category(category: object) -> list[ValidationIssue]:
    """A template's ``category`` is OTP or Transactional."""
    if isinstance(category, str) and category in _CATEGORIES:
        return []
    return [ValidationIssue(Code.INVALID_CATEGORY, "category must be OTP or Transactional.")]


def check_required_text(value: object, field: str) -> list[ValidationIssue]:
    """A required string field must be a string with something visible in it."""
    if isinstance(value, str) and not is_blank(value):
        return []
    return [ValidationIssue(Code.FIELD_REQUIRED, f"{field} is required.")]


def check_positive_number(value: object, field: str) -> list[ValidationIssue]:
    """A per-call option (seconds, a rate) must be a finite number above 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        return [ValidationIssue(Code.INVALID_FIELD, f"{field} must be a positive number.")]
    return []


def check_optional_int(value: object, field: str, *, minimum: int = 0) -> list[ValidationIssue]:
    """An optional integer field (``ttl``, ``seq``) must be a whole number ≥ ``minimum``."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return [ValidationIssue(Code.INVALID_FIELD, f"{field} must be an integer >= {minimum}.")]
    if value > INT64_MAX:
        return [ValidationIssue(Code.INVALID_FIELD, f"{field} must be an integer within 64 bits.")]
    return []


def check_template_definition(
    *,
    category: object,
    params: Iterable[tuple[str, str]],
    locales: Iterable[tuple[str, str]],
    var_example: Iterable[str],
    callback_url: object = None,
) -> list[ValidationIssue]:
    """The create-template rules.

    ``params`` are ``(name, type)`` pairs, ``locales`` ``(lang, text)`` pairs, ``var_example``
    the example names.
    """
    issues = check_category(category)
    params = list(params)
    locales = list(locales)
    seen: dict[str, None] = {}  # the declared names, in order
    for name, type_ in params:
        if not isinstance(name, str) or is_blank(name):
            issues.append(
                ValidationIssue(Code.FIELD_REQUIRED, "params[].name must be a non-blank string.")
            )
            continue
        if name in seen:
            issues.append(ValidationIssue(Code.DUPLICATE_PARAM, f"Parameter {name} is repeated."))
        seen[name] = None
        if type_ != "TEXT":
            issues.append(
                ValidationIssue(Code.INVALID_PARAM_TYPE, f"Parameter {name} must have type TEXT.")
            )
    if not locales:
        issues.append(
            ValidationIssue(Code.LOCALE_REQUIRED, "locales needs at least one language version.")
        )
    languages: set[str] = set()
    used: set[str] = set()
    is_otp = category == TemplateCategory.OTP
    for lang, text in locales:
        lang_issues = check_lang(lang, "locales[].lang")
        issues.extend(lang_issues)
        if not lang_issues and lang in languages:
            issues.append(ValidationIssue(Code.DUPLICATE_LOCALE, f"Locale {lang} is repeated."))
        if not lang_issues:
            languages.add(lang)
        if not isinstance(text, str) or is_blank(text):
            issues.append(
                ValidationIssue(Code.FIELD_REQUIRED, f"locales[{lang}].template is required.")
            )
            continue
        found = placeholders(text)
        used.update(found)
        if is_otp and "pin" not in found:
            issues.append(
                ValidationIssue(
                    Code.OTP_PIN_PLACEHOLDER_REQUIRED,
                    f"OTP templates must include {{{{pin}}}} in every locale ({lang}).",
                )
            )
        for name in found:
            if name not in seen:
                issues.append(
                    ValidationIssue(
                        Code.UNDECLARED_PLACEHOLDER,
                        f"Placeholder {name} in locale {lang} is not declared in params.",
                    )
                )
    for name in seen:
        if name not in used:
            issues.append(
                ValidationIssue(Code.UNUSED_PARAM, f"Parameter {name} is not used by any locale.")
            )
    examples = list(var_example)
    if not all(isinstance(e, str) for e in examples) or Counter(examples) != Counter(seen.keys()):
        issues.append(
            ValidationIssue(
                Code.VAR_EXAMPLE_MISMATCH,
                "varExample must name each declared parameter exactly once.",
            )
        )
    issues.extend(check_callback_url(callback_url, "callbackUrl"))
    return issues
