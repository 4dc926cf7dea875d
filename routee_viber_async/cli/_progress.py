"""Progress display: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
from typing import IO

from ._progress_counts import PlainProgress, Progress

__all__ = ["Progress", "make_progress"]


def make_progress(total: int | None, description: str, stream: IO[str] | None = None) -> Progress:
    """A rich progress bar when ``stream`` is a terminal and rich is installed, else lines."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        try:
            from ._rich_bar import RichProgress
        except ImportError:
            pass
        else:
            return RichProgress(total, description, stream)
    return PlainProgress(total, description, stream)
