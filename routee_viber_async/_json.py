"""JSON encoding for the wire, with orjson."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    """Encode a JSON-ready value to UTF-8 bytes.

    The bytes are copied once to their own size: orjson's result can keep its whole write
    buffer (kilobytes) behind a body of a few hundred bytes, and a burst of queued sends, each
    holding its body until a slot is free, would hold all those buffers.
    """
    return memoryview(orjson.dumps(value)).tobytes()


def dumps_str(value: Any) -> str:
    """Encode a JSON-ready value to a ``str`` (for text files and logs)."""
    return orjson.dumps(value).decode()


#: Decode JSON; raises :data:`JSONDecodeError` (a ``ValueError``) when malformed.
loads: Callable[[bytes | bytearray | memoryview | str], Any] = orjson.loads
