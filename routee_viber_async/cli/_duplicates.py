"""Counting the recipients that appear more than once in a ``send-many`` input.

The count is only a warning (every row is sent, nothing is deduplicated), so it keeps 8 bytes
a row, not the recipients: each one's 64-bit built-in ``hash()`` (SipHash, salted per process,
which is fine: the digests never leave this process), in one of 256 ``array('Q')`` shards
picked by its low byte. Equal recipients have equal digests, hence the same shard; each shard
is sorted on its own (the temporary list is 1/256 of the input) and its equal neighbours
counted. Two different recipients share a digest with odds of about n²/2⁶⁵ (3 in a million for
10 million rows): at worst a warning too many.
"""

from __future__ import annotations

from array import array
from itertools import groupby, islice
from operator import eq

import attrs

__all__ = ["DuplicateCounter", "Duplicates"]

_SHARD_BITS = 8
_SHARD_MASK = (1 << _SHARD_BITS) - 1
# hash() is signed: folded into 0 .. 2**64 - 1, what an array('Q') holds.
_DIGEST_MASK = (1 << 64) - 1


@attrs.frozen
class Duplicates:
    """``recipients`` appear more than once, on ``rows`` rows in all."""

    recipients: int
    rows: int


class DuplicateCounter:
    """Collects a digest per recipient; :meth:`count` says how many repeat."""

    def __init__(self) -> None:
        self._shards = [array("Q") for _ in range(1 << _SHARD_BITS)]

    def add(self, recipient: str) -> None:
        """One more row for ``recipient``."""
        digest = hash(recipient) & _DIGEST_MASK
        self._shards[digest & _SHARD_MASK].append(digest)

    def count(self) -> Duplicates:
        """The recipients seen more than once and their rows."""
        recipients = rows = 0
        for shard in self._shards:
            ordered = sorted(shard)
            if not any(map(eq, ordered, islice(ordered, 1, None))):
                continue  # the usual case, found in C
            for _, group in groupby(ordered):
                size = sum(1 for _ in group)
                if size > 1:
                    recipients += 1
                    rows += size
        return Duplicates(recipients, rows)
