"""The ``send-many`` results file: one JSONL line per row whose outcome is recorded.

The journal is the truth and the results file its projection. A row's line is written and
flushed *before* the journal marks it emitted, so a crash can leave a line the journal does not
know was written, or a recorded outcome without its line; :func:`reconcile` (run at the start
and at the end of every run) makes the file hold exactly one line per recorded row again:
missing lines are appended, and a file with a duplicate or a stale line is rewritten whole,
atomically. Rows about to be sent again (``--resend-unknown``, ``--retry-failed``) lose their
line first, so that a row never has two: it gets its new one when its new outcome is known.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .. import _json
from ._journal import OUTCOME_STATES, Journal, RowRecord

__all__ = ["ForeignResults", "ResultsFile", "reconcile"]


class ForeignResults(Exception):
    """The results file holds lines this journal did not write."""


class ResultsFile:
    """The results file opened for appending (nothing at all without ``--output``)."""

    def __init__(self, path: Path | None) -> None:
        self._handle: IO[bytes] | None = path.open("ab") if path is not None else None

    def write(self, record: RowRecord) -> None:
        """Append the row's line and flush it (a whole line per write)."""
        if self._handle is not None:
            self._handle.write(_line(record))
            self._handle.flush()

    def close(self) -> None:
        """Close the file; a line that could not be flushed is dropped (reconciled later)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()


def reconcile(path: Path | None, journal: Journal, left_out: frozenset[str] = frozenset()) -> None:
    """Make ``path`` hold exactly one line per journal row with an outcome, none for a row in
    flight or in a ``left_out`` state, then mark the journal's rows accordingly.

    Raises :class:`ForeignResults` (before changing anything) when the file has a line for a
    row the journal does not know: it belongs to another run.
    """
    if path is not None and path.exists():
        _drop_partial_last_line(path)
        _reconcile_file(path, journal, OUTCOME_STATES - left_out)
    elif path is not None:
        _append(path, (r for r in journal.all_rows() if r.state in OUTCOME_STATES - left_out))
    journal.mark_all_emitted(left_out)


def _reconcile_file(path: Path, journal: Journal, wanted: frozenset[str]) -> None:
    present, clean = _line_hashes(path)
    missing: list[RowRecord] = []
    for record in journal.all_rows():
        line_hash = present.pop(record.index, None)
        if record.state not in wanted:
            clean = clean and line_hash is None
        elif line_hash is None:
            missing.append(record)
        elif line_hash != hash(_line(record)):  # a stale line: not the row's latest outcome
            clean = False
    if present:
        raise ForeignResults(
            f"--output {path} has results for rows this journal does not know (index "
            f"{min(present)}): it belongs to another run; give another --output"
        )
    if clean:
        _append(path, missing)
    else:
        _rewrite(path, (r for r in journal.all_rows() if r.state in wanted))


def _line_hashes(path: Path) -> tuple[dict[int, int], bool]:
    """Each line's hash by its row index (a hash, not the line: a few bytes a row), and whether
    no row has two lines."""
    present: dict[int, int] = {}
    single = True
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                index = _json.loads(line)["index"]
            except (ValueError, TypeError, KeyError):
                index = None
            if not isinstance(index, int) or isinstance(index, bool):
                raise ForeignResults(
                    f"--output {path}: line {number} is not a send-many results line; "
                    "give another --output"
                )
            single = single and index not in present
            present[index] = hash(line)
    return present, single


def _line(record: RowRecord) -> bytes:
    return _json.dumps(record.output_line()) + b"\n"


def _append(path: Path, records: Iterable[RowRecord]) -> None:
    with path.open("ab") as handle:
        for record in records:
            handle.write(_line(record))
        handle.flush()


def _rewrite(path: Path, records: Iterable[RowRecord]) -> None:
    """Replace the file at once: a reader (or a crash) sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        for record in records:
            handle.write(_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _drop_partial_last_line(path: Path) -> None:
    """A run killed mid-write may leave half a line: cut it (reconciliation writes it whole)."""
    end = path.stat().st_size
    with path.open("rb+") as handle:
        keep = end
        while keep > 0:  # back from the end, a block at a time, to the last newline
            start = max(0, keep - 65536)
            handle.seek(start)
            newline = handle.read(keep - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
        if keep != end:
            handle.truncate(keep)
