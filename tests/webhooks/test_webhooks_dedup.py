"""Deduplicator: a bounded LRU of recently seen callback keys."""

from __future__ import annotations

import pytest

from routee_viber_async.webhooks import Deduplicator, parse_delivery_callback


def test_a_key_is_new_once() -> None:
    dedup = Deduplicator()
    assert dedup.seen(("t-1", "DELIVERED")) is False
    assert dedup.seen(("t-1", "DELIVERED")) is True
    assert dedup.seen(("t-1", "SEEN")) is False
    assert ("t-1", "DELIVERED") in dedup
    assert len(dedup) == 2


def test_the_least_recently_seen_key_is_dropped_first() -> None:
    dedup = Deduplicator(maxsize=2)
    dedup.seen("a")
    dedup.seen("b")
    assert dedup.seen("a") is True  # "a" is now the most recent
    dedup.seen("c")  # evicts "b"
    assert "b" not in dedup
    assert dedup.seen("a") is True
    assert len(dedup) == 2


def test_forget_and_clear() -> None:
    dedup = Deduplicator()
    dedup.seen("a")
    dedup.forget("a")
    dedup.forget("never seen")
    assert dedup.seen("a") is False
    dedup.clear()
    assert len(dedup) == 0
    assert repr(dedup) == "<Deduplicator 0/10000 keys>"


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Deduplicator(maxsize=0)
    assert Deduplicator(maxsize=5).maxsize == 5


def test_a_retried_callback_has_the_same_key(delivery_payload: dict[str, object]) -> None:
    dedup = Deduplicator()
    first = parse_delivery_callback(delivery_payload)
    again = parse_delivery_callback(dict(delivery_payload))
    assert dedup.seen(first.key) is False
    assert dedup.seen(again.key) is True
