"""The progress bar on a terminal (rich, the ``cli`` extra; imported only when it is shown).

Two lines, since all of it does not fit an 80-column terminal::

    send-many ━━━━━━━━━━━━━━━━━━━━━━━━━━╺━━━━━━━━━━━━━ 1200/2000  60% 412/s
      1180 ok · 15 failed · 5 unknown · elapsed 0:00:02 · remaining 0:00:01
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import IO, Any, Self

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar
from rich.table import Table
from rich.text import Text

from ._progress_counts import Progress

__all__ = ["RichProgress"]


class RateColumn(ProgressColumn):
    """Outcomes a second, on average since the start (as the plain lines give it)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        rate = f"{task.completed / elapsed:.0f}/s" if elapsed else "-/s"
        return Text(rate, style="progress.data.speed")


class TwoLineBar(RichBar):
    """rich's progress display, with a line of ``details`` columns under each bar."""

    def __init__(
        self, *columns: ProgressColumn, details: Iterable[ProgressColumn], **options: Any
    ) -> None:
        super().__init__(*columns, **options)
        self.details = list(details)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        details = Table.grid(padding=(0, 1))
        for task in self.tasks:
            details.add_row(*(column.render(task) for column in self.details))
        yield details


class RichProgress(Progress):
    """A :class:`Progress` shown as a rich bar on ``stream``."""

    def __init__(self, total: int | None, description: str, stream: IO[str]) -> None:
        super().__init__(total, description)
        self._bar = TwoLineBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            RateColumn(),
            details=[
                TextColumn(
                    "  [green]{task.fields[ok]} ok[/] · [red]{task.fields[failed]} failed[/] · "
                    "[yellow]{task.fields[unknown]} unknown[/] · elapsed"
                ),
                TimeElapsedColumn(),
                TextColumn("· remaining"),
                TimeRemainingColumn(),
            ],
            console=Console(file=stream),
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> Self:
        self._bar.__enter__()
        self._task = self._bar.add_task(
            self.description, total=self.total, ok=0, failed=0, unknown=0
        )
        return self

    def _refresh(self) -> None:
        self._bar.update(
            self._task, completed=self.done, ok=self.ok, failed=self.failed, unknown=self.unknown
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.__exit__(exc_type, exc, tb)
