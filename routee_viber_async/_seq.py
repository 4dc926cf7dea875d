"""``seq`` values the client assigns to sends that have none."""

from __future__ import annotations

import itertools
import time

__all__ = ["next_seq"]

# Millisecond clock times 1000, plus a counter: unique within the process, ordered, and far
# below 2**53 (about 1.8e15 today; 2**53 is 9.0e15). ``next()`` on itertools.count is atomic in
# CPython, so concurrent tasks never share a value.
_counter = itertools.count(time.time_ns() // 1_000_000 * 1000)


def next_seq() -> int:
    """A ``seq`` never handed out before in this process."""
    return next(_counter)
