"""JSON encoding for the wire, with orjson."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]

JSONDecodeError = orjson.JSONDecodeError


#: Encode a JSON-ready value to UTF-8 bytes.
dumps: Callable[[Any], bytes] = orjson.dumps


def dumps_str(value: Any) -> str:
    """Encode a JSON-ready value to a ``str`` (for text files and logs)."""
    return orjson.dumps(value).decode()


#: Decode JSON; raises :data:`JSONDecodeError` (a ``ValueError``) when malformed.
loads: Callable[[bytes | bytearray | memoryview | str], Any] = orjson.loads
