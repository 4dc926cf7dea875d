"""Progress counts, and their display as plain periodic lines (the rich bar is ``_rich_bar``).

Both show the counts (ok, failed, unknown: a failure that may have reached Routee) and the
rate, the average number of outcomes a second since the start. The bar adds the elapsed and
the remaining time on a second line, labelled, under the bar itself.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import IO, Self

__all__ = ["PlainProgress", "Progress"]


class Progress:
    """Counts outcomes and shows them; use as a context manager."""

    def __init__(self, total: int | None, description: str) -> None:
        self.total = total
        self.description = description
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.unknown = 0

    def advance(self, ok: bool, *, unknown: bool = False) -> None:
        """One more outcome: ok, else unknown (it may have reached Routee) or failed."""
        self.done += 1
        if ok:
            self.ok += 1
        elif unknown:
            self.unknown += 1
        else:
            self.failed += 1
        self._refresh()

    def update(self, *, ok: int, failed: int, unknown: int = 0) -> None:
        """Set the counts outright (for progress measured elsewhere)."""
        self.ok, self.failed, self.unknown = ok, failed, unknown
        self.done = ok + failed + unknown
        self._refresh()

    def _refresh(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass


class PlainProgress(Progress):
    """A line every ``interval`` seconds and one at the end (for logs and pipes)."""

    def __init__(
        self, total: int | None, description: str, stream: IO[str], interval: float = 2.0
    ) -> None:
        super().__init__(total, description)
        self._stream = stream
        self._interval = interval
        self._started = time.monotonic()
        self._last = self._started

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        return (
            f"{self.description}: {self.done}{of} done, {self.ok} ok, {self.failed} failed, "
            f"{self.unknown} unknown, {self.done / elapsed:.0f}/s"
        )

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            print(self._line(), file=self._stream, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        print(self._line(), file=self._stream, flush=True)
