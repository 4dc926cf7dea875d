"""``routee-viber send-many``: a resumable, at-most-once fan-out from a CSV or JSONL file.

The run, in order:

0. lock the journal (``JOURNAL.lock``) for the whole run: a second run on it refuses at once;
1. preflight: fetch the template (it must exist, be approved and, when it names its sender,
   belong to ``--sender``) and check every input row against it locally, so a wrong template,
   sender, language or parameter set stops the run within seconds, before anything is sent
   (exit 2); the send pass reads exactly the bytes checked. Recipients that appear more than
   once are counted and warned about (every row is sent all the same);
2. open the journal (refusing one written for another input or other settings) and resume:
   rows a previous run finished are skipped, rows it left in flight are *unknown* and not resent
   unless ``--resend-unknown`` (``--retry-failed`` resends those that certainly failed); the
   results file is reconciled with the journal (one line per row with an outcome);
3. fan out, recording each row's ``seq`` in the journal before its first attempt and its outcome
   when known, then its line in the results file. Ambiguous sends are never retried.
   The journal is written a batch at a time: the pending rows of a batch in one transaction
   before the first of them is handed to the fan-out, and the outcomes every
   ``_OUTCOME_BATCH`` rows or ``_OUTCOME_DELAY`` seconds, their lines written (one write) and
   flushed before the transaction that records them and marks them written. Resuming walks
   the input and the journal together in index order: nothing holds every row in memory.
   ``--max-failures`` identical refusals in a row (a wrong sender, say) stop new sends: those
   in flight drain and the run exits 2 (``--retry-failed`` resends the failed rows later).

A journal or results file that cannot be written stops the run: before the first send it is
exit 2; later, the sends in flight drain, the journal stays consistent, and the exit is 1.

The first SIGINT/SIGTERM during the preflight ends the run at once (exit 130, nothing sent).
Once the sends have started it stops new sends and drains those in flight (exit 130); a second
exits at once, the journal still consistent (rows in flight stay ``pending``, i.e. unknown).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs

from .._client import RouteeViberClient
from .._config import RetryPolicy
from .._errors import NotFoundError
from .._requests import SendMessage, TemplateRules, send_message_issues
from .._responses import Template
from .._seq import next_seq
from ..resources import SendOutcome
from . import _crashpoint
from ._duplicates import DuplicateCounter
from ._failures import DEFAULT_MAX_FAILURES, FailureStreak
from ._input import InputChanged, InputError, InputRow, InputSnapshot
from ._journal import (
    FAILED,
    PENDING,
    SENT,
    UNKNOWN,
    Journal,
    JournalMismatch,
    RowRecord,
    read_states,
)
from ._lock import JournalBusy, JournalLock
from ._outcome import row_record as _record
from ._progress import make_progress
from ._results import ForeignResults, ResultsFile, reconcile

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "SendMany"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_T = TypeVar("_T")

#: Outcomes are committed this many at a time, or after this many seconds, whichever first.
_OUTCOME_BATCH = 256
_OUTCOME_DELAY = 0.05
#: The most rows recorded pending in one transaction (a crash leaves them unknown).
_PENDING_BATCH = 256


class UsageError(Exception):
    """Bad usage or input: exit 2 with this message."""


class _Interrupted(Exception):
    """Ctrl-C (or SIGTERM) before any send: exit 130."""


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
    retry_failed: bool = False
    max_failures: int = DEFAULT_MAX_FAILURES
    allow_duplicates: bool = False
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

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
            if self.max_failures < 0:
                raise UsageError("--max-failures must be 0 (no limit) or more")
            self._check_options()
            with self._lock():
                return await self._run_locked(client_factory, err)
        except (UsageError, InputError, JournalMismatch, JournalBusy, ForeignResults) as exc:
            print(f"routee-viber send-many: {exc}", file=err)
            return EXIT_USAGE
        except _Interrupted:
            print("routee-viber send-many: interrupted before anything was sent", file=err)
            return EXIT_INTERRUPTED

    def _lock(self) -> JournalLock:
        lock = JournalLock(self.journal_path)
        try:
            return lock.acquire()
        except OSError as exc:
            raise UsageError(
                f"--journal {self.journal_path}: cannot lock it ({lock.path}: "
                f"{exc.strerror or exc})"
            ) from None

    async def _run_locked(
        self, client_factory: Callable[..., RouteeViberClient], err: IO[str]
    ) -> int:
        retry = RetryPolicy(retry_ambiguous_sends=False)
        stop = _StopSignal()
        async with contextlib.AsyncExitStack() as exits:
            hooks = await self._serve_metrics(exits, err)
            # Installed until the client is closed: a Ctrl-C that came after the sends but
            # before the close would otherwise raise KeyboardInterrupt in the middle of it and
            # leave its connections open.
            with stop.installed():
                return await self._run_client(client_factory, retry, hooks, stop, err)

    async def _serve_metrics(self, exits: contextlib.AsyncExitStack, err: IO[str]) -> list[object]:
        """With ``--metrics-port``: serve the run's Prometheus metrics; the hooks feeding them."""
        if self.metrics_port is None:
            return []
        try:
            from prometheus_client import CollectorRegistry

            from ..integrations.prometheus import PrometheusHooks, serve_metrics
        except ImportError:
            raise UsageError(
                "--metrics-port needs prometheus-client: "
                "pip install 'routee-viber-async[prometheus]'"
            ) from None
        registry = CollectorRegistry()
        try:
            server = await exits.enter_async_context(
                serve_metrics(self.metrics_port, host=self.metrics_host, registry=registry)
            )
        except OSError as exc:
            raise UsageError(
                f"--metrics-port {self.metrics_port}: cannot listen ({exc.strerror or exc})"
            ) from None
        print(f"routee-viber send-many: metrics on {server.url}", file=err, flush=True)
        return [PrometheusHooks(registry)]

    async def _run_client(
        self,
        client_factory: Callable[..., RouteeViberClient],
        retry: RetryPolicy,
        hooks: list[object],
        stop: _StopSignal,
        err: IO[str],
    ) -> int:
        options: dict[str, object] = {"retry": retry, "max_concurrency": self.concurrency}
        if hooks:
            options["hooks"] = hooks
        async with client_factory(**options) as client:
            template = await stop.before_sending(self._preflight_template(client))
            snapshot, total = self._check_rows(template, err)
            return await self._send_checked(client, template, snapshot, total, stop, err)

    def _check_options(self) -> None:
        """More checks of the options, before anything else (a distributed run has some)."""

    async def _send_checked(
        self,
        client: RouteeViberClient,
        template: Template,
        snapshot: InputSnapshot,
        total: int,
        stop: _StopSignal,
        err: IO[str],
    ) -> int:
        """Send the rows checked: here, from this process with the local journal."""
        journal = self._open_journal(snapshot.sha256)
        try:
            return await self._send(client, template, journal, snapshot, total, stop, err)
        finally:
            journal.close()

    async def _preflight_template(self, client: RouteeViberClient) -> Template:
        try:
            template = await client.templates.get(self.template_id)
        except NotFoundError:
            raise UsageError(f"template {self.template_id} was not found") from None
        owner = template.sender_info_tracking_id
        if owner and owner != self.sender:
            raise UsageError(
                f"template {self.template_id} belongs to sender {owner}, not to --sender "
                f"{self.sender}: nothing was sent"
            )
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

    def _check_rows(self, template: Template, err: IO[str]) -> tuple[InputSnapshot, int]:
        """Check every row this run may send locally before anything is sent; the snapshot of
        the bytes checked (the send pass reads them again) and the row count.

        The rows the journal holds as done (and this run does not send again) are counted,
        not checked: a rerun of a finished run checks nothing. The journal is only read here;
        if it turns out to belong to another input, the run refuses after this anyway."""
        snapshot = InputSnapshot(self.input)
        duplicates = None if self.allow_duplicates else DuplicateCounter()
        rules = TemplateRules.of(template)
        count = 0
        with contextlib.closing(_JournalWalk(self._done_states())) as done:
            for row in snapshot.first_read():
                count += 1
                state = done.state_of(row.index)
                if state is not None and not self._sends_again(state):
                    continue
                # SendMessage.issues(template) of the row's message, before any is built.
                issues = send_message_issues(
                    self.sender, row.to, self.template_id, self.lang, row.params, rules
                )
                if issues:
                    reasons = "; ".join(f"{code}: {message}" for code, message in issues)
                    raise InputError(f"row {row.index + 1} (line {row.line}): {reasons}")
                if duplicates is not None:
                    duplicates.add(row.to)
        if count == 0:
            raise InputError(f"{self.input}: no rows to send")
        if duplicates is not None:
            _warn_duplicates(duplicates, err)
        return snapshot, count

    def _done_states(self) -> Iterator[tuple[int, str, int]]:
        """The journal's rows as a previous run left them, read only (none if it has none)."""
        path = self.journal_path
        if not path.exists():
            return
        try:
            db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return
        try:
            yield from read_states(db)
        except sqlite3.Error:
            return  # not a journal we can read: Journal.open says why, after the check
        finally:
            db.close()

    def _sends_again(self, state: str) -> bool:
        """Whether a row the journal holds in ``state`` is sent by this run (a row a previous
        run left pending is unknown)."""
        return (UNKNOWN if state == PENDING else state) in self._resent_states

    def fingerprint(self, input_sha256: str) -> dict[str, str]:
        """What a run is: its input and settings (a journal refuses another run's)."""
        return {
            "input_sha256": input_sha256,
            "sender": self.sender,
            "template_id": self.template_id,
            "lang": self.lang,
        }

    def _open_journal(self, input_sha256: str, redis_run: str | None = None) -> Journal:
        fingerprint = self.fingerprint(input_sha256)
        if redis_run is not None:  # the local copy of a distributed run's journal
            fingerprint["redis_run"] = redis_run
        try:
            return Journal.open(self.journal_path, fingerprint)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"--journal {self.journal_path}: cannot open it ({exc})") from None

    @property
    def _resent_states(self) -> frozenset[str]:
        """The states of the rows this run sends again."""
        return frozenset(
            state
            for state, asked in ((UNKNOWN, self.resend_unknown), (FAILED, self.retry_failed))
            if asked
        )

    def _resume(self, journal: Journal, err: IO[str]) -> dict[str, int]:
        """Before any send: the results file reconciled with the journal (rows left in flight
        recovered from their line, or unknown); how many rows are in each state."""
        try:
            stale = reconcile(self.output, journal, self._resent_states, resuming=True)
            counts = journal.counts()
        except sqlite3.Error as exc:
            raise UsageError(f"journal {journal.path}: cannot write it ({exc})") from None
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write it ({exc.strerror})") from None
        unknown_held = counts.get(UNKNOWN, 0)
        if unknown_held and not self.resend_unknown:
            print(
                f"routee-viber send-many: {unknown_held} row(s) have an unknown outcome, "
                f"{stale} of them left in flight by an interrupted run: they may have "
                "reached Routee, so they are not resent (--resend-unknown sends them again).",
                file=err,
            )
        return counts

    async def _send(
        self,
        client: RouteeViberClient,
        template: Template,
        journal: Journal,
        snapshot: InputSnapshot,
        total: int,
        stop: _StopSignal,
        err: IO[str],
    ) -> int:
        counts = self._resume(journal, err)
        todo = (
            total
            - sum(counts.values())
            + sum(counts.get(state, 0) for state in self._resent_states)
        )
        if todo == 0:
            return self._nothing_to_send(journal, total, err)
        # seq -> (index, to) of the rows handed to the fan-out, until their outcome is known.
        in_flight: dict[int, tuple[int, str]] = {}
        failure: list[str] = []  # why the run stopped early, when it did
        streak = FailureStreak(self.max_failures)

        def stop_for(reason: str) -> None:
            if not failure:
                failure.append(reason)
            stop.requested = True

        # The rows of the current batch recorded pending and not handed to the fan-out yet:
        # if the run stops before they are, they get their previous state back.
        unsent: collections.deque[tuple[int, str | None, int]] = collections.deque()

        def release_unsent() -> None:
            if unsent:
                journal.release_pending(unsent)
                unsent.clear()

        def rows_to_send() -> Iterator[SendMessage]:
            # A failure here ends the input: the sends in flight drain, nothing new starts.
            try:
                for batch in self._batches(snapshot.rows(), journal, stop):
                    seqs = [next_seq() for _ in batch]
                    journal.record_pending_batch(
                        (row.index, row.to, seq) for (row, _), seq in zip(batch, seqs, strict=True)
                    )
                    unsent.extend((row.index, *(previous or (None, 0))) for row, previous in batch)
                    _crashpoint.reached("pending-committed")
                    for (row, _), seq in zip(batch, seqs, strict=True):
                        if stop.requested:
                            return
                        unsent.popleft()
                        in_flight[seq] = (row.index, row.to)
                        yield self.message(row, seq)
                    if stop.requested:
                        return
            except InputChanged as exc:
                stop_for(str(exc))
            except sqlite3.Error as exc:
                stop_for(self._journal_failure(journal, exc))
            finally:
                try:
                    release_unsent()
                except sqlite3.Error as exc:  # they stay pending: unknown, never resent
                    stop_for(self._journal_failure(journal, exc))

        try:
            output = ResultsFile(self.output)
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write it ({exc.strerror})") from None
        finished = _Outcomes(self, journal, output, stop_for)

        def leave() -> None:
            # A second Ctrl-C leaves at once: the outcomes known are recorded, the rows not
            # handed over yet are released, and the results file gets the lines of the rows
            # whose line was taken out to resend them and that were not resent yet.
            finished.flush()
            release_unsent()
            reconcile(self.output, journal)

        stop.on_leave = leave
        try:
            with make_progress(todo, "send-many", err) as progress:
                outcomes = client.messages.send_many(
                    rows_to_send(), concurrency=self.concurrency, rate_limit=self.rate,
                    # Every row was checked against this template before the first send, and
                    # the send pass reads exactly the bytes checked: not checked twice.
                    template=template, validate=False,
                )  # fmt: skip
                async with outcomes:
                    async for outcome in outcomes:
                        seq = outcome.request.seq
                        assert seq is not None, "every row is sent with its journal's seq"
                        finished.add(*in_flight.pop(seq), outcome)
                        progress.advance(outcome.ok, unknown=outcome.outcome_unknown)
                        if streak.observe(outcome):
                            stop.requested = True  # no new sends; those in flight drain
                finished.flush()
        finally:
            stop.on_leave = None
            finished.close()
            output.close()
        try:
            # A run that ended early may leave rows without their line (an outcome that could
            # not be written, a row taken out to resend that was not); a run that went to the
            # end wrote one line per outcome to the file the start made exact: nothing to do.
            if stop.requested:
                reconcile(self.output, journal)
        except sqlite3.Error as exc:
            failure.append(self._journal_failure(journal, exc))
        except OSError as exc:
            failure.append(f"--output {self.output}: cannot write it ({exc.strerror})")
        if failure:
            print(f"routee-viber send-many: {failure[0]}", file=err)
        try:
            counts = journal.counts()
        except sqlite3.Error:
            return EXIT_FAILED  # the failure above said why
        if streak.tripped and not failure:
            print(
                f"routee-viber send-many: {_stopped_by_refusals(streak, counts.get(FAILED, 0))}",
                file=err,
            )
        _print_summary(counts, total, err)
        if failure:
            return EXIT_FAILED
        if streak.tripped:
            return EXIT_USAGE
        if stop.requested:
            return EXIT_INTERRUPTED
        if counts.get(FAILED, 0) or counts.get(UNKNOWN, 0):
            return EXIT_FAILED
        return EXIT_OK

    def _nothing_to_send(self, journal: Journal, total: int, err: IO[str]) -> int:
        """A rerun of a finished input: say so; the exit code is the finished run's."""
        try:
            counts = journal.counts()
        except sqlite3.Error as exc:
            raise UsageError(f"journal {journal.path}: cannot read it ({exc})") from None
        print(
            f"routee-viber send-many: all {total} rows are already done (journal "
            f"{journal.path}): nothing to send",
            file=err,
        )
        if counts.get(FAILED, 0) or counts.get(UNKNOWN, 0):
            _print_summary(counts, total, err)  # what is left, and why the exit is 1
            return EXIT_FAILED
        return EXIT_OK

    def _batches(
        self, rows: Iterator[InputRow], journal: Journal, stop: _StopSignal
    ) -> Iterator[list[tuple[InputRow, tuple[str, int] | None]]]:
        """The rows to send, a batch at a time, each with the journal's ``(state, seq)`` of it
        (None: new): the input and the journal walked together in index order."""
        batch: list[tuple[InputRow, tuple[str, int] | None]] = []
        size = min(max(self.concurrency, 8), _PENDING_BATCH)
        with contextlib.closing(_JournalWalk(journal.states())) as known:
            for row in rows:
                if stop.requested:
                    break
                previous = known.row(row.index)
                if previous is not None and not self._sends_again(previous[0]):
                    continue
                batch.append((row, previous))
                if len(batch) == size:
                    yield batch
                    batch = []
        if batch and not stop.requested:
            yield batch

    @staticmethod
    def _journal_failure(journal: Journal, exc: sqlite3.Error) -> str:
        return (
            f"journal {journal.path}: cannot write it ({exc}); stopped after the sends in "
            "flight (a row whose outcome could not be recorded counts as unknown)"
        )


def _print_summary(counts: dict[str, int], total: int, err: IO[str]) -> None:
    print(
        f"routee-viber send-many: {counts.get(SENT, 0)} sent, {counts.get(FAILED, 0)} "
        # A row still pending (its outcome could not be recorded) is unknown too.
        f"failed, {counts.get(UNKNOWN, 0) + counts.get(PENDING, 0)} unknown, "
        f"{total - sum(counts.values())} not yet sent, of {total}",
        file=err,
    )


def _stopped_by_refusals(streak: FailureStreak, failed: int) -> str:
    assert streak.tripped_reason is not None
    return (
        f"stopped after {streak.limit} sends in a row were refused the same way "
        f"({streak.tripped_reason}); fix the cause, then run again with "
        f"--retry-failed to resend the {failed} failed rows (--max-failures 0 never stops)"
    )


def _warn_duplicates(counter: DuplicateCounter, err: IO[str]) -> None:
    found = counter.count()
    if found.recipients:
        print(
            f"routee-viber send-many: {found.recipients} recipients appear more than once "
            f"({found.rows} rows); --allow-duplicates silences this",
            file=err,
        )


class _Outcomes:
    """The outcomes of the sends, recorded a batch at a time: the batch's lines are written
    (one write) and flushed, then one transaction records the outcomes and marks them written.
    A batch goes when it has ``_OUTCOME_BATCH`` rows or its first row waited
    ``_OUTCOME_DELAY`` seconds."""

    def __init__(
        self, job: SendMany, journal: Journal, output: ResultsFile, stop_for: Callable[[str], None]
    ) -> None:
        self._job = job
        self._journal = journal
        self._output = output
        self._stop_for = stop_for
        self._batch: list[RowRecord] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, index: int, to: str, outcome: SendOutcome) -> None:
        """Note one outcome; record the batch if it is full."""
        self.add_record(_record(index, to, outcome))

    def add_record(self, record: RowRecord) -> None:
        """Note one row's outcome; record the batch if it is full."""
        self._batch.append(record)
        if len(self._batch) >= _OUTCOME_BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_OUTCOME_DELAY, self.flush)

    def flush(self) -> None:
        """Record the outcomes noted so far (a failure stops the run: see ``stop_for``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if not batch:
            return
        written = self._write(batch)
        _crashpoint.reached("lines-written")
        try:
            self._journal.record_outcomes(
                (r.state, r.tracking_id, r.status, r.error, r.attempts, written, r.index)
                for r in batch
            )
        except sqlite3.Error as exc:
            # Not recorded: the rows stay pending (unknown), so their lines must go too.
            if written:
                self._output.undo_last_write()
            self._stop_for(self._job._journal_failure(self._journal, exc))
            return
        _crashpoint.reached("outcomes-committed")

    def _write(self, batch: list[RowRecord]) -> bool:
        try:
            self._output.write_many(batch)
        except OSError as exc:
            self._stop_for(
                f"--output {self._job.output}: cannot write it ({exc.strerror}); stopped"
            )
            return False
        return True

    def close(self) -> None:
        """Cancel the timer (the outcomes not flushed yet are the run's last: see ``flush``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _JournalWalk:
    """The journal's rows looked up in increasing index order, read as a stream alongside."""

    def __init__(self, rows: Iterator[tuple[int, str, int]]) -> None:
        self._rows = rows
        self._next = next(rows, None)

    def row(self, index: int) -> tuple[str, int] | None:
        """``(state, seq)`` of row ``index``, if the journal has it; indexes must increase."""
        while self._next is not None and self._next[0] < index:
            self._next = next(self._rows, None)
        if self._next is None or self._next[0] != index:
            return None
        return self._next[1], self._next[2]

    def state_of(self, index: int) -> str | None:
        """The state of row ``index``, if the journal has it; indexes must increase."""
        found = self.row(index)
        return None if found is None else found[0]

    def close(self) -> None:
        """Stop reading (closes the reader, e.g. its database)."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


class _StopSignal:
    """First SIGINT/SIGTERM: during the preflight, end it; later, stop taking new rows.
    Second: leave at once."""

    def __init__(self) -> None:
        self.requested = False
        self.on_leave: Callable[[], None] | None = None
        self._preflight: asyncio.Future[Any] | None = None

    async def before_sending(self, call: Awaitable[_T]) -> _T:
        """Await a call of the preflight; a first signal meanwhile cancels it and raises
        :class:`_Interrupted` (nothing was sent, so there is nothing to drain)."""
        task = asyncio.ensure_future(call)
        self._preflight = task
        try:
            return await task
        except asyncio.CancelledError:
            if self.requested and task.cancelled():  # cancelled by the handler, not from above
                raise _Interrupted from None
            raise
        finally:
            self._preflight = None

    def _handle(self) -> None:
        if self._preflight is not None and not self.requested:
            self.requested = True
            self._preflight.cancel()
            return
        if self.requested:
            # The journal commits every state change, so it is consistent right now.
            self._leave()
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        print(
            "\nroutee-viber send-many: stopping after the sends in flight "
            "(press Ctrl-C again to leave now)",
            file=sys.stderr,
            flush=True,
        )

    def _leave(self) -> None:
        if self.on_leave is not None:
            # Leaving anyway: whatever this could not write, the next run reconciles.
            with contextlib.suppress(Exception):
                self.on_leave()

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
