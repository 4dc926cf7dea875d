"""``assert_no_secret_reachable``: what an error tracker would serialise, searched for secrets.

Error trackers (Sentry and the like) record an exception's ``repr``, ``str``, every attribute
and every chained exception (``__cause__`` *and* ``__context__``, even under ``from None``).
This walks that whole graph: attributes (``vars()`` and ``__slots__``), ``args``, the chain, and
the containers, objects and mappings they hold, with a visited set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_LEAVES = (str, bytes, int, float, bool, type(None))


def _children(value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, BaseException):
        yield "args", value.args
        yield "__cause__", value.__cause__
        yield "__context__", value.__context__
    if isinstance(value, Mapping) or (hasattr(value, "items") and callable(value.items)):
        try:
            items = list(value.items())
        except Exception:
            items = []
        for key, item in items:
            yield f"key {key!r}", key
            yield f"[{key!r}]", item
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield f"[{i}]", item
    try:
        attributes = dict(vars(value))
    except TypeError:
        attributes = {}
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if isinstance(name, str) and hasattr(value, name):
                attributes.setdefault(name, getattr(value, name))
    for name, item in attributes.items():
        if not callable(item) or isinstance(item, BaseException):
            yield f".{name}", item


def reachable_texts(root: BaseException, *, limit: int = 20000) -> list[tuple[str, str]]:
    """``(path, text)`` for every repr/str of every object reachable from ``root``."""
    found: list[tuple[str, str]] = []
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [("exc", root)]
    while pending and len(seen) < limit:
        path, value = pending.pop()
        if id(value) in seen or isinstance(value, type):
            continue
        seen.add(id(value))
        for text in (repr(value), str(value)):
            found.append((path, text))
        if isinstance(value, bytes):
            found.append((path, value.decode("latin-1")))
        if isinstance(value, _LEAVES):
            continue
        for name, child in _children(value):
            pending.append((path + name, child))
    return found


def assert_no_secret_reachable(root: BaseException, secrets: Iterable[str]) -> None:
    """Fail, naming the path, if any secret shows anywhere in ``root``'s graph."""
    wanted = [s for s in secrets if s]
    assert wanted, "no secret to look for"
    for path, text in reachable_texts(root):
        for secret in wanted:
            assert secret not in text, f"{secret!r} reachable at {path}: {text[:300]!r}"
