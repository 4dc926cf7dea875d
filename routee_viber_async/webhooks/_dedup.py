"""Dropping repeated callbacks: Routee retries a callback until the receiver answers 2xx."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = ["AnyDeduplicator", "Deduplicator", "SharedDeduplicator"]


@runtime_checkable
class SharedDeduplicator(Protocol):
    """A deduplicator kept outside the process (such as
    ``integrations.redis.RedisDeduplicator``): the same three operations as
    :class:`Deduplicator`, awaited."""

    async def contains(self, key: tuple[str, ...]) -> bool:
        """True if ``key`` was seen recently (remembers nothing)."""

    async def seen(self, key: tuple[str, ...]) -> bool:
        """True if ``key`` was seen recently; otherwise remember it and return False."""

    async def forget(self, key: tuple[str, ...]) -> None:
        """Forget ``key`` (after its handler failed, so that a retry is handled again)."""


class Deduplicator:
    """A bounded LRU set of recently seen callback keys.

    Every parsed callback has a ``key`` that is the same for a repeated delivery of it
    (``(tracking_id, status)``, ``(template_id, template_status)``)::

        dedup = Deduplicator(maxsize=10_000)

        async def on_delivery(callback: DeliveryCallback) -> None:
            if dedup.seen(callback.key):
                return  # Routee retried a callback we already handled
            try:
                await handle(callback)
            except Exception:
                dedup.forget(callback.key)  # let Routee's retry through
                raise

    The routers do exactly this when given ``deduplicator=``. Memory is bounded by ``maxsize``:
    the least recently seen key is dropped first. Not thread-safe (one event loop).
    """

    __slots__ = ("_keys", "_maxsize")

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    @property
    def maxsize(self) -> int:
        """How many keys are remembered at most."""
        return self._maxsize

    def seen(self, key: Hashable) -> bool:
        """True if ``key`` was seen recently; otherwise remember it and return False."""
        keys = self._keys
        if key in keys:
            keys.move_to_end(key)
            return True
        keys[key] = None
        if len(keys) > self._maxsize:
            keys.popitem(last=False)
        return False

    def forget(self, key: Hashable) -> None:
        """Forget ``key`` (after its handler failed, so that a retry is handled again)."""
        self._keys.pop(key, None)

    def clear(self) -> None:
        """Forget every key."""
        self._keys.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<Deduplicator {len(self._keys)}/{self._maxsize} keys>"


#: What the receivers take as ``deduplicator=``.
AnyDeduplicator: TypeAlias = Deduplicator | SharedDeduplicator
