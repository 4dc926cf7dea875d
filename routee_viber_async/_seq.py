"""``seq`` values the client assigns to sends that have none."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

__all__ = ["next_seq"]

# Millisecond clock times 1000, plus a counter: unique within the process, ordered, and far
# below 2**53 (about 1.8e15 today; 2**53 is 9.0e15). ``next()`` on itertools.count is atomic in
# CPython, so concurrent tasks and threads never share a value.
_counter = itertools.count(time.time_ns() // 1_000_000 * 1000)

#: A ``seq`` never handed out before in this process (the counter's own ``__next__``: called
#: once per send, so no Python frame around it).
next_seq: Callable[[], int] = _counter.__next__
