"""Counting the recipients that appear more than once in a ``send-many`` input.

The count is only a warning (every row is sent, nothing is deduplicated), so it keeps 8 bytes
a row, not the recipients: an 8-byte BLAKE2b digest of each, in one of 256 ``array('Q')``
shards picked by the digest's top byte. Equal recipients have equal digests, hence the same
shard; each shard is sorted on its own (the temporary list is 1/256 of the input) and its equal
neighbours counted. Two different recipients share a digest with odds of about n²/2⁶⁵ (3 in a
million for 10 million rows): at worst a warning too many.
"""

from __future__ import annotations

import hashlib
from array import array
from itertools import groupby, islice
from operator import eq

import attrs

__all__ = ["DuplicateCounter", "Duplicates"]

_SHARD_BITS = 8


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
        digest = hashlib.blake2b(recipient.encode(), digest_size=8).digest()
        self._shards[digest[0]].append(int.from_bytes(digest, "big"))

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
