"""Masking of secrets for everything that is not the wire: reprs, logs, errors, files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import NoneType
from typing import Any

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "mask_mapping_repr",
    "mask_secrets",
    "mask_url",
    "mask_url_repr",
    "query_value_pattern",
]

MASK = "***"

#: Keys whose values never leave the wire: OTP pins and OAuth material.
SECRET_KEYS = frozenset(
    {
        "pin",
        "access_token",
        "accessToken",
        "refresh_token",
        "client_secret",
        "application_secret",
        "applicationSecret",
        "password",
    }
)


#: JSON scalars: nothing to mask, and no ABC check needed to tell.
_SCALARS = frozenset({str, int, float, bool, NoneType})


def mask_secrets(value: Any) -> Any:
    """Return a copy of a JSON-like value with every secret key's value replaced by ``***``.

    Values without secrets are returned as they are (not copied).
    """
    if type(value) in _SCALARS:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        if not _has_secret(value):
            return value
        return {
            k: (MASK if k in SECRET_KEYS and v is not None else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        masked = [mask_secrets(v) for v in value]
        return value if all(a is b for a, b in zip(masked, value, strict=True)) else masked
    return value


def _has_secret(value: Any) -> bool:
    if type(value) in _SCALARS:
        return False
    if type(value) is dict or isinstance(value, Mapping):
        return any(key in SECRET_KEYS or _has_secret(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def mask_mapping_repr(value: object) -> str:
    """``repr`` of a mapping field with secrets masked (used as an attrs ``repr=``)."""
    return repr(mask_secrets(value))


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
