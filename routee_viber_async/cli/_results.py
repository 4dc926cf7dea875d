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
from typing import IO, Any

from .. import _json
from ._journal import OUTCOME_STATES, Journal, RowRecord

__all__ = ["ForeignResults", "ResultsFile", "reconcile"]


class ForeignResults(Exception):
    """The results file holds lines this journal did not write."""


class ResultsFile:
    """The results file opened for appending (nothing at all without ``--output``)."""

    def __init__(self, path: Path | None) -> None:
        self._handle: IO[bytes] | None = path.open("ab") if path is not None else None
        self._last_end: int | None = None

    def write(self, record: RowRecord) -> None:
        """Append the row's line and flush it (a whole line per write)."""
        self.write_many((record,))

    def write_many(self, records: Iterable[RowRecord]) -> None:
        """Append the rows' lines in one write and flush them (whole lines)."""
        if self._handle is not None:
            self._last_end = self._handle.tell()
            self._handle.write(b"".join(_line(record) for record in records))
            self._handle.flush()

    def undo_last_write(self) -> None:
        """Cut the lines of the last write (their outcomes could not be recorded); where that
        fails too, the next run's reconciliation takes them out."""
        if self._handle is not None and self._last_end is not None:
            with contextlib.suppress(OSError):
                self._handle.truncate(self._last_end)
                self._handle.seek(self._last_end)

    def close(self) -> None:
        """Close the file; a line that could not be flushed is dropped (reconciled later)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()


def reconcile(
    path: Path | None,
    journal: Journal,
    left_out: frozenset[str] = frozenset(),
    *,
    resuming: bool = False,
) -> int:
    """Make ``path`` hold exactly one line per journal row with an outcome, none for a row in
    flight or in a ``left_out`` state, then mark the journal's rows accordingly.

    ``resuming`` (the start of a run): rows a previous run left ``pending`` whose line says
    they were sent are recovered as ``sent`` from it; the others become ``unknown``
    (:meth:`Journal.mark_stale_pending_unknown`); returns how many did.

    Streams: the file's lines go to a temporary table of the journal and are compared with the
    rows in index order, so memory stays flat however many rows there are.

    Raises :class:`ForeignResults` (before changing anything) when the file has a line for a
    row the journal does not know: it belongs to another run.
    """
    wanted = OUTCOME_STATES - left_out
    stale = 0
    if path is not None and path.exists():
        _drop_partial_last_line(path)
        with journal.results_lines():
            single = _load_lines(path, journal)
            if resuming:
                journal.recover_sent_from_lines()
                stale = journal.mark_stale_pending_unknown()
            _reconcile_file(path, journal, wanted, single)
    else:
        if resuming:
            stale = journal.mark_stale_pending_unknown()
        if path is not None:
            _append(path, (r for r in journal.all_rows() if r.state in wanted))
    journal.mark_all_emitted(left_out)
    return stale


def _reconcile_file(path: Path, journal: Journal, wanted: frozenset[str], single: bool) -> None:
    clean = single
    missing = False
    for record, line_hash in journal.rows_with_line_hash():
        if record.state not in wanted:
            clean = clean and line_hash is None
        elif line_hash is None:
            missing = True
        elif line_hash != hash(_line(record)):  # a stale line: not the row's latest outcome
            clean = False
        if not clean:
            break
    if not clean:
        _rewrite(path, (r for r in journal.all_rows() if r.state in wanted))
    elif missing:
        _append(path, journal.rows_without_line(wanted))


_LOAD_BATCH = 4096


def _load_lines(path: Path, journal: Journal) -> bool:
    """Put each line's index, hash and sent fields in the journal's temporary table; whether no
    row has two lines. Raises :class:`ForeignResults` for a line that is not ours."""
    single = True
    batch: list[tuple[int, int, Any, Any, Any, Any, Any]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                data = _json.loads(line)
                index = data["index"]
            except (ValueError, TypeError, KeyError):
                index = None
            if not isinstance(index, int) or isinstance(index, bool):
                raise ForeignResults(
                    f"--output {path}: line {number} is not a send-many results line; "
                    "give another --output"
                )
            batch.append(
                (
                    index,
                    hash(line),
                    data.get("seq"),
                    data.get("ok") is True,
                    data.get("trackingId"),
                    data.get("status"),
                    data.get("attempts"),
                )
            )
            if len(batch) == _LOAD_BATCH:
                single = journal.add_lines(batch) == len(batch) and single
                batch.clear()
    single = journal.add_lines(batch) == len(batch) and single
    foreign = journal.first_foreign_line()
    if foreign is not None:
        raise ForeignResults(
            f"--output {path} has results for rows this journal does not know (index "
            f"{foreign}): it belongs to another run; give another --output"
        )
    return single


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
