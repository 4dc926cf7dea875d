"""Masking of secrets for everything that is not the wire: reprs, logs, errors, files.

Two tools: :func:`mask_secrets` masks by *key* (a mapping's ``pin``, ``access_token``, ...), and
:func:`scrub_text` / :func:`scrub_value` remove known secret *values* from server text (a 400
that quotes a pin, a proxy page that echoes the request, a token answer that cannot be read).
Which template parameters are secret is configurable: :func:`set_secret_params`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from types import NoneType
from typing import Any

__all__ = [
    "DEFAULT_SECRET_PARAMS",
    "MASK",
    "OAUTH_SECRET_KEYS",
    "mask_mapping_repr",
    "mask_secrets",
    "mask_url",
    "mask_url_repr",
    "query_value_pattern",
    "scrub_text",
    "scrub_value",
    "secret_keys",
    "secret_params",
    "secret_values",
    "set_secret_params",
]

MASK = "***"

#: Keys of OAuth material: always masked.
OAUTH_SECRET_KEYS = frozenset(
    {
        "access_token",
        "accessToken",
        "refresh_token",
        "client_secret",
        "application_secret",
        "applicationSecret",
        "password",
    }
)

#: The template parameters masked unless :func:`set_secret_params` says otherwise.
DEFAULT_SECRET_PARAMS = frozenset({"pin"})

# The current settings: read on every mask, replaced (never mutated) by set_secret_params.
_secret_params: frozenset[str] = DEFAULT_SECRET_PARAMS
_secret_param_names: tuple[str, ...] = tuple(DEFAULT_SECRET_PARAMS)
_secret_keys: frozenset[str] = OAUTH_SECRET_KEYS | DEFAULT_SECRET_PARAMS


def set_secret_params(names: Iterable[str]) -> None:
    """Say which template parameter names hold secrets (default: ``{"pin"}``), process-wide.

    Their values show as ``***`` in every repr, error, log record and results file, and are
    scrubbed out of server text kept on errors. Reprs have no client to ask, so this is a
    process-wide setting; call it once at start-up, e.g. ``set_secret_params({"pin", "otp"})``.
    """
    global _secret_params, _secret_param_names, _secret_keys
    if isinstance(names, str):
        raise TypeError("set_secret_params() takes a collection of names, not one string")
    chosen = frozenset(names)
    bad = [name for name in chosen if not isinstance(name, str) or not name]
    if bad:
        raise TypeError(f"secret parameter names must be non-empty strings, got {bad!r}")
    _secret_params = chosen
    _secret_param_names = tuple(chosen)
    _secret_keys = OAUTH_SECRET_KEYS | chosen


def secret_params() -> frozenset[str]:
    """The template parameter names currently treated as secret."""
    return _secret_params


def secret_keys() -> frozenset[str]:
    """Every key whose value is masked: the secret parameters and OAuth material."""
    return _secret_keys


#: JSON scalars: nothing to mask, and no ABC check needed to tell.
_SCALARS = frozenset({str, int, float, bool, NoneType})


def mask_secrets(value: Any) -> Any:
    """Return a copy of a JSON-like value with every secret key's value replaced by ``***``.

    Values without secrets are returned as they are (not copied).
    """
    if type(value) in _SCALARS:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        keys = _secret_keys
        if not _has_secret(value, keys):
            return value
        return {
            k: (MASK if k in keys and v is not None else mask_secrets(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        masked = [mask_secrets(v) for v in value]
        return value if all(a is b for a, b in zip(masked, value, strict=True)) else masked
    return value


def _has_secret(value: Any, keys: frozenset[str]) -> bool:
    if type(value) in _SCALARS:
        return False
    if type(value) is dict or isinstance(value, Mapping):
        return any(key in keys or _has_secret(item, keys) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_secret(v, keys) for v in value)
    return False


def mask_mapping_repr(value: object) -> str:
    """``repr`` of a mapping field with secrets masked (used as an attrs ``repr=``)."""
    return repr(mask_secrets(value))


def secret_values(params: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The values of a template-parameter mapping's secret parameters, as text.

    Cheap on purpose (every send computes it): one lookup per secret name, usually one.
    """
    if type(params) is not dict and not isinstance(params, Mapping):
        return ()
    found: tuple[str, ...] = ()
    for name in _secret_param_names:
        value = params.get(name)
        if value is not None:
            found += (value if type(value) is str else str(value),)
    return found


def scrub_text(text: str, secrets: Collection[str]) -> str:
    """``text`` with every occurrence of each secret value replaced by ``***``."""
    # Longest first: a secret that contains another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_value(value: Any, secrets: Collection[str]) -> Any:
    """A JSON-like value with secret values scrubbed out of every string (keys included)."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, Mapping):
        return {scrub_text(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in secrets:
        return MASK  # a pin sent as a number, echoed as one
    return value


#: A URL's userinfo (``user:pass@``) and a ``token=`` query value: secrets a URL may carry.
_URL_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def query_value_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """A pattern matching the values of the query parameters ``names`` in a URL or a log line."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?<=[?&;])((?:{alternatives})=)[^&#;\s\"']*", re.IGNORECASE)


_URL_TOKEN = query_value_pattern(["token"])


def mask_url(url: str) -> str:
    """``url`` with its userinfo and any ``token=`` query value replaced by ``***``.

    >>> mask_url("https://user:pw@example.com/hook?a=1&token=s3cret")
    'https://***@example.com/hook?a=1&token=***'
    """
    return _URL_TOKEN.sub(rf"\g<1>{MASK}", _URL_USERINFO.sub(MASK + "@", url))


def mask_url_repr(value: object) -> str:
    """``repr`` of a URL field with its secrets masked (used as an attrs ``repr=``)."""
    return repr(mask_url(value)) if isinstance(value, str) else repr(value)
