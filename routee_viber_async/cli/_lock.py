"""One ``send-many`` run per journal: an exclusive ``flock`` on ``JOURNAL.lock`` for the whole run.

Two runs on one journal would each send the rows the other has not finished yet. The lock is
taken before anything else (before the template is even fetched), so the second run refuses at
once. The kernel drops a ``flock`` when its holder dies, SIGKILL included, so a killed run never
blocks the next one; the file itself stays (removing it would race with a run opening it) and
holds the pid of the process that last took the lock, to name it in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

__all__ = ["JournalBusy", "JournalLock", "lock_path"]


class JournalBusy(Exception):
    """Another run holds the journal's lock."""


def lock_path(journal: Path) -> Path:
    """The lock file beside a journal."""
    return journal.with_name(journal.name + ".lock")


class JournalLock:
    """The lock of one journal, held from :meth:`acquire` to the end of a ``with`` block."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = lock_path(journal)
        self._fd: int | None = None

    def acquire(self) -> JournalLock:
        """Take the lock or raise :class:`JournalBusy` (``OSError`` if it cannot be made)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise JournalBusy(
                f"journal {self.journal} is in use by another send-many run (pid {holder}): "
                "wait for it to end (two runs on one journal would send rows twice)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __enter__(self) -> JournalLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


def _read_pid(fd: int) -> str:
    """The holder's pid as it wrote it ("unknown" if it has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"
