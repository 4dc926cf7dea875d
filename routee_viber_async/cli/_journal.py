"""The SQLite journal that makes ``send-many`` resumable without sending anything twice.

Each input row is recorded with its ``seq`` in state ``pending`` *before* its first attempt, and
moved to a final state when its outcome is known:

- ``sent``: Routee accepted it;
- ``failed``: Routee certainly did not accept it (refused, or never reached);
- ``unknown``: the request may have reached Routee (a timeout after writing, a dropped
  connection, 500/502/504). A ``pending`` row found by a later run is ``unknown`` too: the
  previous run crashed or was killed while it was in flight.

A rerun skips ``sent`` and ``failed`` rows and never resends ``unknown`` ones unless asked to
(``--retry-failed`` resends the ``failed`` ones). ``emitted`` says that the row's current outcome
has its line in the results file; it is set only after the line was written and flushed, so a
crash in between leaves a row the next run's reconciliation checks against the file.
No pin is ever written here: rows hold the recipient, the seq and the outcome only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

__all__ = ["FINAL_STATES", "OUTCOME_STATES", "Journal", "JournalMismatch", "RowRecord"]

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

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def known(self) -> dict[int, RowRecord]:
        """Every recorded row by index."""
        return {record.index: record for record in self._records("SELECT * FROM rows")}

    def _records(self, query: str, *args: Any) -> Iterator[RowRecord]:
        for row in self._db.execute(query, args):
            idx, to, seq, state, tracking_id, status, error, attempts, emitted, _ = row
            yield RowRecord(
                idx, to, seq, state, tracking_id, status, error, attempts, bool(emitted)
            )

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

    def all_rows(self) -> Iterator[RowRecord]:
        """Every row in input order."""
        return self._records("SELECT * FROM rows ORDER BY idx")

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
