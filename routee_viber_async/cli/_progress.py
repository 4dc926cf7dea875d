"""Progress display: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["Progress", "make_progress"]


class Progress:
    """Counts outcomes and shows them; use as a context manager."""

    def __init__(self, total: int | None, description: str) -> None:
        self.total = total
        self.description = description
        self.done = 0
        self.ok = 0
        self.failed = 0

    def advance(self, ok: bool) -> None:
        """One more outcome."""
        self.done += 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self._refresh()

    def update(self, *, ok: int, failed: int) -> None:
        """Set the counts outright (for progress measured elsewhere)."""
        self.ok, self.failed, self.done = ok, failed, ok + failed
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


class _PlainProgress(Progress):
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
            f"{self.done / elapsed:.0f}/s"
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


class _RichProgress(Progress):
    def __init__(self, total: int | None, description: str, stream: IO[str]) -> None:
        super().__init__(total, description)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> Self:
        self._bar.__enter__()
        self._task = self._bar.add_task(self.description, total=self.total, ok=0, failed=0)
        return self

    def _refresh(self) -> None:
        self._bar.update(self._task, completed=self.done, ok=self.ok, failed=self.failed)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.__exit__(exc_type, exc, tb)


def make_progress(total: int | None, description: str, stream: IO[str] | None = None) -> Progress:
    """A rich progress bar when ``stream`` is a terminal and rich is installed, else lines."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        try:
            return _RichProgress(total, description, stream)
        except ImportError:
            pass
    return _PlainProgress(total, description, stream)
