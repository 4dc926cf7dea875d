"""The SQLite journal that makes ``send-many`` resumable without sending anything twice.

Each input row is recorded with its ``seq`` in state ``pending`` *before* its first attempt, and
moved to a final state when its outcome is known:

- ``sent``: Routee accepted it;
- ``failed``: Routee certainly did not accept it (refused, or never reached);
- ``unknown``: the request may have reached Routee (a timeout after writing, a dropped
  connection, 500/502/504). A ``pending`` row found by a later run is ``unknown`` too: the
  previous run crashed or was killed while it was in flight.

Writes are grouped: the pending rows of a batch go in one transaction before any of their sends
starts, and outcomes are committed a batch at a time, each with ``emitted`` set in the same
statement once its line is in the results file. A row still ``pending`` whose line reached the
results file (the run died between the two) is recovered from that line by the reconciliation.

A rerun skips ``sent`` and ``failed`` rows and never resends ``unknown`` ones unless asked to
(``--retry-failed`` resends the ``failed`` ones). ``emitted`` says that the row's current outcome
has its line in the results file; it is set only after the line was written and flushed, so a
crash in between leaves a row the next run's reconciliation checks against the file.
No pin is ever written here: rows hold the recipient, the seq and the outcome only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "FINAL_STATES",
    "OUTCOME_STATES",
    "Journal",
    "JournalMismatch",
    "Outcome",
    "RowRecord",
    "read_states",
]

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"
FINAL_STATES = frozenset({SENT, FAILED})
#: The states of a row whose outcome is recorded: each has one line in the results file.
OUTCOME_STATES = frozenset({SENT, FAILED, UNKNOWN})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    idx INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    tracking_id TEXT,
    status TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    emitted INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
"""


class JournalMismatch(Exception):
    """The journal belongs to another input or other settings."""


@attrs.frozen
class RowRecord:
    """One row as the journal knows it."""

    index: int
    to: str
    seq: int
    state: str
    tracking_id: str | None
    status: str | None
    error: str | None
    attempts: int
    emitted: bool

    def output_line(self) -> dict[str, Any]:
        """The results file's line for this row (no pin: there is none to give)."""
        return {
            "index": self.index,
            "to": self.to,
            "seq": self.seq,
            "ok": self.state == SENT,
            "trackingId": self.tracking_id,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
        }


#: One outcome to record: ``(state, tracking_id, status, error, attempts, emitted, index)``.
Outcome = tuple[str, str | None, str | None, str | None, int, bool, int]

#: Rows fetched per query when walking the journal in index order (a statement is never left
#: open across writes: each page is read whole).
_PAGE = 4096


def read_states(db: sqlite3.Connection) -> Iterator[tuple[int, str, int]]:
    """Every row's ``(index, state, seq)`` in index order, a page at a time (constant memory)."""
    last = -1
    while True:
        page = db.execute(
            "SELECT idx, state, seq FROM rows WHERE idx > ? ORDER BY idx LIMIT ?", (last, _PAGE)
        ).fetchall()
        if not page:
            return
        yield from page
        last = page[-1][0]


class Journal:
    """A journal file; open it with :meth:`open` and close it when done."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path, fingerprint: dict[str, str]) -> Journal:
        """Open (or create) the journal for an input described by ``fingerprint``.

        Raises :class:`JournalMismatch` when the journal was written for another input or
        other settings (template, sender, language), unless only the settings differ and every
        row recorded so far certainly failed: then the journal takes the new settings.
        """
        db = _connect(path)
        # WAL with NORMAL sync: each commit is durable against a process crash (the journal's
        # purpose) without an fsync per row.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        journal = cls(db, path)
        try:
            journal._check_fingerprint(fingerprint)
            # A write that changes nothing: a read-only journal fails here, before any send,
            # rather than at the first row.
            with db:
                db.execute("UPDATE meta SET value = value")
        except BaseException:
            db.close()
            raise
        return journal

    def _check_fingerprint(self, fingerprint: dict[str, str]) -> None:
        stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            with self._db:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", sorted(fingerprint.items())
                )
            return
        differing = sorted(k for k in fingerprint if stored.get(k) != fingerprint[k])
        if differing:
            (started,) = self._db.execute(
                "SELECT COUNT(*) FROM rows WHERE state != ?", (FAILED,)
            ).fetchone()
            if not started and "input_sha256" not in differing:
                # Every row so far certainly failed, so nothing reached Routee under the old
                # settings: the run goes on with the new ones (a wrong --sender fixed, say).
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        [(key, fingerprint[key]) for key in differing],
                    )
                return
            raise JournalMismatch(
                f"journal {self.path} was written for another run (differs in: "
                f"{', '.join(differing)}). Deleting it would send every row again, the "
                f"{started} already sent or possibly sent included. To finish that run, "
                "restore its input and settings; for a genuinely new run, give a new --journal"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction around several statements (the connection autocommits each one
        otherwise): committed on return, rolled back on an error."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite already rolled back after e.g. a full disk
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def states(self) -> Iterator[tuple[int, str, int]]:
        """Every row's ``(index, state, seq)`` in index order (see :func:`read_states`)."""
        return read_states(self._db)

    def known(self) -> dict[int, RowRecord]:
        """Every recorded row by index."""
        return {record.index: record for record in self._records("SELECT * FROM rows")}

    def _records(self, query: str, *args: Any) -> Iterator[RowRecord]:
        for row in self._db.execute(query, args):
            yield _record(row)

    def mark_stale_pending_unknown(self) -> int:
        """Rows a previous run left ``pending`` (in flight when it died) become ``unknown``."""
        with self._db:
            cursor = self._db.execute(
                "UPDATE rows SET state = ?, status = ?, error = ?, updated = ? WHERE state = ?",
                (
                    UNKNOWN,
                    UNKNOWN,
                    "outcome unknown: the previous run stopped while this send was in flight",
                    time.time(),
                    PENDING,
                ),
            )
        return cursor.rowcount

    def record_pending(self, index: int, to: str, seq: int) -> None:
        """Record a row's ``seq`` before its first attempt (committed before returning)."""
        with self._db:
            self._db.execute(
                "INSERT INTO rows (idx, recipient, seq, state, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(idx) DO UPDATE SET seq = excluded.seq, state = excluded.state, "
                "emitted = 0, updated = excluded.updated",
                (index, to, seq, PENDING, time.time()),
            )

    def record_pending_batch(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """Record ``(index, to, seq)`` rows pending in one transaction (committed on return)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rows (idx, recipient, seq, state, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(idx) DO UPDATE SET seq = excluded.seq, state = excluded.state, "
                "emitted = 0, updated = excluded.updated",
                ((index, to, seq, PENDING, now) for index, to, seq in rows),
            )

    def upsert_rows(self, records: Iterable[RowRecord]) -> None:
        """Rows as another journal holds them (the distributed run's, in Redis), in one
        transaction; a row that changed loses its ``emitted`` mark."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rows (idx, recipient, seq, state, tracking_id, status, error, "
                "attempts, emitted, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) "
                "ON CONFLICT(idx) DO UPDATE SET recipient = excluded.recipient, "
                "seq = excluded.seq, state = excluded.state, tracking_id = excluded.tracking_id,"
                " status = excluded.status, error = excluded.error, "
                "attempts = excluded.attempts, emitted = 0, updated = excluded.updated "
                "WHERE rows.seq != excluded.seq OR rows.state != excluded.state",
                (_upsert_values(r, now) for r in records),
            )

    def states_of(self, indexes: Iterable[int]) -> dict[int, tuple[str, int]]:
        """``index -> (state, seq)`` of those of ``indexes`` the journal has."""
        found: dict[int, tuple[str, int]] = {}
        wanted = list(indexes)
        for start in range(0, len(wanted), 500):
            page = wanted[start : start + 500]
            marks = ", ".join("?" for _ in page)
            for idx, state, seq in self._db.execute(
                f"SELECT idx, state, seq FROM rows WHERE idx IN ({marks})", page
            ):
                found[idx] = (state, seq)
        return found

    def release_pending(self, rows: Iterable[tuple[int, str | None, int]]) -> None:
        """Rows recorded pending that were certainly not handed to a send after all: each
        ``(index, state, seq)`` gets its state and seq back, or (state None) goes."""
        rows = list(rows)
        with self._transaction():
            self._db.executemany(
                "DELETE FROM rows WHERE idx = ? AND state = ?",
                ((index, PENDING) for index, state, _ in rows if state is None),
            )
            self._db.executemany(
                "UPDATE rows SET state = ?, seq = ? WHERE idx = ? AND state = ?",
                ((state, seq, index, PENDING) for index, state, seq in rows if state is not None),
            )

    def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Record outcomes in one transaction (no read back: the caller has the rows)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE rows SET state = ?, tracking_id = ?, status = ?, error = ?, "
                "attempts = ?, emitted = ?, updated = ? WHERE idx = ?",
                ((*outcome[:6], now, outcome[6]) for outcome in outcomes),
            )

    def record_outcome(
        self,
        index: int,
        *,
        state: str,
        tracking_id: str | None,
        status: str | None,
        error: str | None,
        attempts: int,
    ) -> RowRecord:
        """Record a row's outcome (its line is not written yet: :meth:`mark_emitted` after it
        is); returns the row."""
        with self._db:
            self._db.execute(
                "UPDATE rows SET state = ?, tracking_id = ?, status = ?, error = ?, "
                "attempts = ?, emitted = 0, updated = ? WHERE idx = ?",
                (state, tracking_id, status, error, attempts, time.time(), index),
            )
        record = next(self._records("SELECT * FROM rows WHERE idx = ?", index), None)
        if record is None:
            raise KeyError(index)
        return record

    def mark_emitted(self, index: int) -> None:
        """Note that the row's current outcome has a line in the results file."""
        with self._db:
            self._db.execute("UPDATE rows SET emitted = 1 WHERE idx = ?", (index,))

    def mark_all_emitted(self, left_out: frozenset[str]) -> None:
        """After a reconciliation: the rows with an outcome have their line, except those in a
        ``left_out`` state (to be sent again), and the rows in flight have none."""
        states = sorted(OUTCOME_STATES - left_out)
        marks = ", ".join("?" for _ in states)
        with self._db:
            self._db.execute(f"UPDATE rows SET emitted = (state IN ({marks}))", states)

    @contextlib.contextmanager
    def results_lines(self) -> Iterator[None]:
        """A temporary table of the results file's lines (index, hash, and what a recovery
        needs) for the duration of a reconciliation: on disk, not in this process's memory."""
        self._db.execute(
            "CREATE TEMP TABLE results_lines (idx INTEGER PRIMARY KEY, hash INTEGER NOT NULL, "
            "seq INTEGER, ok INTEGER, tracking_id TEXT, status TEXT, attempts INTEGER)"
        )
        try:
            yield
        finally:
            self._db.execute("DROP TABLE temp.results_lines")

    def add_lines(self, lines: list[tuple[int, int, Any, Any, Any, Any, Any]]) -> int:
        """Add ``(index, hash, seq, ok, trackingId, status, attempts)`` lines; how many were
        new (a line for an index already added is a duplicate, not added)."""
        before = self._db.total_changes
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO temp.results_lines VALUES (?, ?, ?, ?, ?, ?, ?)", lines
            )
        return self._db.total_changes - before

    def first_foreign_line(self) -> int | None:
        """The lowest index of a line for a row this journal does not know, if any."""
        (index,) = self._db.execute(
            "SELECT MIN(idx) FROM temp.results_lines WHERE idx NOT IN (SELECT idx FROM rows)"
        ).fetchone()
        return int(index) if index is not None else None

    def recover_sent_from_lines(self) -> int:
        """Rows still ``pending`` whose line (same ``seq``) says Routee accepted them, with a
        tracking id: the run died after writing the line and before committing the outcome.
        They are ``sent``, as the line says."""
        with self._db:
            cursor = self._db.execute(
                "UPDATE rows SET (state, tracking_id, status, error, attempts, emitted, updated)"
                " = (SELECT ?, l.tracking_id, l.status, NULL, l.attempts, 1, ? "
                "    FROM temp.results_lines AS l WHERE l.idx = rows.idx) "
                "WHERE state = ? AND idx IN (SELECT idx FROM temp.results_lines AS l "
                "    WHERE l.idx = rows.idx AND l.seq = rows.seq AND l.ok = 1 "
                "    AND typeof(l.tracking_id) = 'text' AND typeof(l.status) = 'text' "
                "    AND typeof(l.attempts) = 'integer')",
                (SENT, time.time(), PENDING),
            )
        return cursor.rowcount

    def rows_with_line_hash(self) -> Iterator[tuple[RowRecord, int | None]]:
        """Every row in index order with the hash of its line (None: no line), paged."""
        last = -1
        while True:
            page = self._db.execute(
                "SELECT rows.*, l.hash FROM rows LEFT JOIN temp.results_lines AS l "
                "ON l.idx = rows.idx WHERE rows.idx > ? ORDER BY rows.idx LIMIT ?",
                (last, _PAGE),
            ).fetchall()
            if not page:
                return
            for row in page:
                yield _record(row[:-1]), row[-1]
            last = page[-1][0]

    def rows_without_line(self, states: Iterable[str]) -> Iterator[RowRecord]:
        """The rows in ``states`` that have no line, in index order."""
        wanted = sorted(states)
        marks = ", ".join("?" for _ in wanted)
        return self._records(
            f"SELECT * FROM rows WHERE state IN ({marks}) AND idx NOT IN "
            "(SELECT idx FROM temp.results_lines) ORDER BY idx",
            *wanted,
        )

    def all_rows(self) -> Iterator[RowRecord]:
        """Every row in input order."""
        return self._records("SELECT * FROM rows ORDER BY idx")

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())


def _upsert_values(r: RowRecord, now: float) -> tuple[Any, ...]:
    return (r.index, r.to, r.seq, r.state, r.tracking_id, r.status, r.error, r.attempts, now)


def _record(row: tuple[Any, ...]) -> RowRecord:
    idx, to, seq, state, tracking_id, status, error, attempts, emitted, _ = row
    return RowRecord(idx, to, seq, state, tracking_id, status, error, attempts, bool(emitted))


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
