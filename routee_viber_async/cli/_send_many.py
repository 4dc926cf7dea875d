"""``routee-viber send-many``: a resumable, at-most-once fan-out from a CSV or JSONL file.

The run, in order:

1. preflight: fetch the template (it must exist and be approved) and check every input row
   against it locally, so a wrong template, language or parameter set stops the run within
   seconds, before anything is sent (exit 2);
2. open the journal (refusing one written for another input or other settings) and resume:
   rows a previous run finished are skipped, rows it left in flight are *unknown* and not resent
   unless ``--resend-unknown``;
3. fan out, recording each row's ``seq`` in the journal before its first attempt and its outcome
   (plus one line in the results file) when known. Ambiguous sends are never retried.

The first SIGINT/SIGTERM stops new sends and drains those in flight (exit 130); a second exits
at once, the journal still consistent (rows in flight stay ``pending``, i.e. unknown).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from .. import _json
from .._client import RouteeViberClient
from .._config import RetryPolicy
from .._errors import NotFoundError, RouteeError, ValidationError
from .._requests import SendMessage
from .._responses import Template
from .._seq import next_seq
from ..resources import SendOutcome
from ._input import InputError, InputRow, fingerprint_file, read_rows
from ._journal import FAILED, SENT, UNKNOWN, Journal, JournalMismatch, RowRecord
from ._progress import make_progress

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "SendMany"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad usage or input: exit 2 with this message."""


@attrs.frozen
class SendMany:
    """The options of one ``send-many`` run."""

    input: Path
    sender: str
    template_id: str
    lang: str
    concurrency: int = 50
    rate: float | None = None
    output: Path | None = None
    journal: Path | None = None
    resend_unknown: bool = False

    @property
    def journal_path(self) -> Path:
        """``--journal``, by default ``INPUT.journal`` beside the input."""
        return self.journal or self.input.with_name(self.input.name + ".journal")

    def message(self, row: InputRow, seq: int | None = None) -> SendMessage:
        """The send for one input row."""
        return SendMessage(
            sender_info_tracking_id=self.sender,
            to=row.to,
            template_id=self.template_id,
            template_lang=self.lang,
            template_params=row.params,
            seq=seq,
        )

    async def run(
        self,
        client_factory: Callable[..., RouteeViberClient],
        stderr: IO[str] | None = None,
    ) -> int:
        """Run the command; returns the process exit code."""
        err = stderr if stderr is not None else sys.stderr
        try:
            if self.concurrency < 1:
                raise UsageError("--concurrency must be at least 1")
            if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
                raise UsageError("--rate must be a positive number")
            retry = RetryPolicy(retry_ambiguous_sends=False)
            stop = _StopSignal()
            # Installed until the client is closed: a Ctrl-C that came after the sends but
            # before the close would otherwise raise KeyboardInterrupt in the middle of it and
            # leave its connections open.
            with stop.installed():
                async with client_factory(retry=retry, max_concurrency=self.concurrency) as client:
                    template = await self._preflight_template(client)
                    total = self._check_rows(template)
                    journal = self._open_journal()
                    try:
                        return await self._send(client, template, journal, total, stop, err)
                    finally:
                        journal.close()
        except (UsageError, InputError, JournalMismatch) as exc:
            print(f"routee-viber send-many: {exc}", file=err)
            return EXIT_USAGE

    async def _preflight_template(self, client: RouteeViberClient) -> Template:
        try:
            template = await client.templates.get(self.template_id)
        except NotFoundError:
            raise UsageError(f"template {self.template_id} was not found") from None
        if not template.is_approved:
            raise UsageError(
                f"template {self.template_id} is {template.status}, not APPROVED: "
                "it cannot be sent yet"
            )
        if self.lang not in template.languages:
            raise UsageError(
                f"template {self.template_id} has no locale {self.lang!r} "
                f"(it has: {', '.join(template.languages) or 'none'})"
            )
        return template

    def _check_rows(self, template: Template) -> int:
        """Check every row locally before anything is sent; returns the row count."""
        count = 0
        for row in read_rows(self.input):
            issues = self.message(row).issues(template)
            if issues:
                reasons = "; ".join(f"{code}: {message}" for code, message in issues)
                raise InputError(f"row {row.index + 1} (line {row.line}): {reasons}")
            count += 1
        if count == 0:
            raise InputError(f"{self.input}: no rows to send")
        return count

    def _open_journal(self) -> Journal:
        fingerprint = {
            "input_sha256": fingerprint_file(self.input),
            "sender": self.sender,
            "template_id": self.template_id,
            "lang": self.lang,
        }
        try:
            return Journal.open(self.journal_path, fingerprint)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"--journal {self.journal_path}: cannot open it ({exc})") from None

    async def _send(
        self,
        client: RouteeViberClient,
        template: Template,
        journal: Journal,
        total: int,
        stop: _StopSignal,
        err: IO[str],
    ) -> int:
        stale = journal.mark_stale_pending_unknown()
        known = journal.known()
        try:
            output = _ResultsFile(self.output)
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write it ({exc.strerror})") from None
        try:
            # Unknown rows that will not be resent still get their one results line.
            for record in known.values():
                if record.state == UNKNOWN and not record.emitted and not self.resend_unknown:
                    output.write(record.output_line())
                    journal.mark_emitted(record.index)
            unknown_held = sum(1 for r in known.values() if r.state == UNKNOWN)
            if unknown_held and not self.resend_unknown:
                print(
                    f"routee-viber send-many: {unknown_held} row(s) have an unknown outcome, "
                    f"{stale} of them left in flight by an interrupted run: they may have "
                    "reached Routee, so they are not resent (--resend-unknown sends them again).",
                    file=err,
                )
            resent = {i for i, r in known.items() if r.state == UNKNOWN and self.resend_unknown}
            todo = total - sum(
                1
                for i, r in known.items()
                if r.state in (SENT, FAILED, UNKNOWN) and i not in resent
            )
            seq_to_index: dict[int, int] = {}

            def rows_to_send() -> Iterator[SendMessage]:
                for row in read_rows(self.input):
                    if stop.requested:
                        return
                    record = known.get(row.index)
                    if record is not None and row.index not in resent:
                        continue
                    seq = next_seq()
                    journal.record_pending(row.index, row.to, seq)
                    seq_to_index[seq] = row.index
                    yield self.message(row, seq)

            with make_progress(todo, "send-many", err) as progress:
                outcomes = client.messages.send_many(
                    rows_to_send(), concurrency=self.concurrency, rate_limit=self.rate,
                    template=template,
                )  # fmt: skip
                async with outcomes:
                    async for outcome in outcomes:
                        seq = outcome.request.seq
                        assert seq is not None, "every row is sent with its journal's seq"
                        index = seq_to_index.pop(seq)
                        record = _record(journal, index, outcome)
                        output.write(record.output_line())
                        progress.advance(record.state == SENT)
        finally:
            output.close()
        if resent & set(known):
            output.rewrite_from(journal.all_rows())
        counts = journal.counts()
        print(
            f"routee-viber send-many: {counts.get(SENT, 0)} sent, {counts.get(FAILED, 0)} "
            f"failed, {counts.get(UNKNOWN, 0)} unknown, "
            f"{total - sum(counts.values())} not yet sent, of {total}",
            file=err,
        )
        if stop.requested:
            return EXIT_INTERRUPTED
        if counts.get(FAILED, 0) or counts.get(UNKNOWN, 0):
            return EXIT_FAILED
        return EXIT_OK


def _record(journal: Journal, index: int, outcome: SendOutcome) -> RowRecord:
    if outcome.result is not None:
        status = outcome.result.status
        return journal.record_outcome(
            index,
            state=SENT,
            tracking_id=outcome.result.tracking_id,
            status=str(status.status) if status is not None and status.status else "QUEUED",
            error=None,
            attempts=outcome.attempts,
        )
    error = outcome.error
    unknown = outcome.outcome_unknown
    return journal.record_outcome(
        index,
        state=UNKNOWN if unknown else FAILED,
        tracking_id=None,
        status=UNKNOWN if unknown else "failed",
        error=_describe(error),
        attempts=outcome.attempts,
    )


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, ValidationError) and error.issues:
        return "; ".join(f"{code}: {message}" for code, message in error.issues)
    if isinstance(error, RouteeError):
        return f"{type(error).__name__}: {error}"
    # Not ours: name the type only, its message could carry anything.
    return f"{type(error).__name__}"


class _ResultsFile:
    """The JSONL results file: appended line by line, each line flushed whole."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._handle: IO[bytes] | None = None
        if path is not None:
            _drop_partial_last_line(path)
            self._handle = path.open("ab")

    def write(self, line: dict[str, Any]) -> None:
        if self._handle is not None:
            self._handle.write(_json.dumps(line) + b"\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def rewrite_from(self, rows: Iterator[RowRecord]) -> None:
        """Rewrite the file with one line per journal row (after unknown rows were resent)."""
        if self._path is None:
            return
        tmp = self._path.with_name(self._path.name + ".tmp")
        with tmp.open("wb") as handle:
            for row in rows:
                if row.emitted:
                    handle.write(_json.dumps(row.output_line()) + b"\n")
        os.replace(tmp, self._path)


def _drop_partial_last_line(path: Path) -> None:
    """A run killed mid-write may leave half a line: cut it (its row is rewritten or unknown)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        data = path.read_bytes()
        handle.truncate(data.rfind(b"\n") + 1)


class _StopSignal:
    """First SIGINT/SIGTERM: stop taking new rows. Second: leave at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self) -> None:
        if self.requested:
            # The journal commits every state change, so it is consistent right now.
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        print(
            "\nroutee-viber send-many: stopping after the sends in flight "
            "(press Ctrl-C again to leave now)",
            file=sys.stderr,
            flush=True,
        )

    def installed(self) -> _SignalHandlers:
        return _SignalHandlers(self._handle)


class _SignalHandlers:
    def __init__(self, handler: Callable[[], None]) -> None:
        self._handler = handler
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._handler)

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)
