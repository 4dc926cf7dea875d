"""Soak: ``send_many`` against the sandbox with injected faults of every kind.

::

    python -m benchmarks.soak                       # 100,000 sends, both retry modes
    python -m benchmarks.soak --count 2000 --mode at-most-once --seed 7

The sandbox answers a share ``--fault-rate`` (25% by default) of the API requests with a fault,
spread evenly over every kind it knows: 429 with a (short) ``Retry-After``, 500, 502, 503, 504,
dropped connections, replies slower than the client's timeout, and revoked tokens. Half of the
ambiguous faults (500, 502, 504, drops, slow replies) strike *after* the sandbox accepted the
send, as a real outage does. Every token is also revoked at once half-way through the run.

Two modes:

- ``at-most-once`` (``RetryPolicy(retry_ambiguous_sends=False)``): every input has exactly one
  outcome, and the sandbox accepts no ``seq`` twice;
- ``retry`` (ambiguous sends retried too): every input ends sent, or with a
  :class:`~routee_viber_async.RouteeError` after the policy's attempts.

In both: no unhandled exception, no warning, no error logged, and no send that the client
reports as certainly failed was accepted by the sandbox. :func:`run_soak` is the core coroutine
(``tests/reliability/test_soak.py`` runs it with a small count); it returns a
:class:`SoakReport` whose ``problems`` lists every broken invariant. The process exits 1 when
there is any.

Retries use real backoff scaled down (milliseconds), no retry budget (so that every retryable
failure gets the policy's attempts) and ``forbidden_refresh_after=0``: the sandbox answers a
revoked token with 403 as Routee does, and under these fault rates every token is young.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import logging
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import aiohttp
import attrs

from routee_viber_async import (
    AccessToken,
    ClientCredentials,
    CreateTemplate,
    RetryPolicy,
    RouteeError,
    RouteeViberClient,
    SendMessage,
    SendOutcome,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    VarExample,
)
from routee_viber_async._retry import classify
from routee_viber_async.sandbox import Sandbox

__all__ = [
    "FAULT_KINDS",
    "SoakReport",
    "SoakSettings",
    "approved_otp_template",
    "format_report",
    "main",
    "outcome_kind",
    "pin_for",
    "run_soak",
]

#: Every fault kind of the sandbox; ``--fault-rate`` is spread evenly over them.
FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "bad_gateway",
    "service_unavailable",
    "gateway_timeout",
    "drop_connection",
    "slow_reply",
    "token_expiry",
)

MODES = {"at-most-once": (False,), "retry": (True,), "both": (False, True)}


def pin_for(index: int) -> str:
    """The pin of input ``index``: a string no id, seq or number can contain by chance."""
    return f"P{index:07d}Q"


def recipient_for(index: int) -> str:
    """The recipient of input ``index`` (E.164)."""
    return f"+3069{index:08d}"


@attrs.frozen(kw_only=True)
class SoakSettings:
    """One soak run. Times are seconds."""

    count: int = 2000
    fault_rate: float = 0.25
    concurrency: int = 50
    seed: int = 1
    retry_ambiguous_sends: bool = False
    max_attempts: int = 4
    timeout: float = 0.5
    """The client's per-attempt timeout; slow replies take ``slow_reply_delay`` (longer)."""
    slow_reply_delay: float = 0.8
    retry_after: float = 0.05
    """The sandbox's ``Retry-After`` on 429."""
    revoke_at: float | None = 0.5
    """Revoke every token once this share of the outcomes is in (None: never)."""
    fault_after_accept_share: float = 0.5

    def __attrs_post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.slow_reply_delay <= self.timeout:
            raise ValueError("slow_reply_delay must exceed the client timeout")

    @property
    def mode(self) -> str:
        """``retry`` or ``at-most-once``."""
        return "retry" if self.retry_ambiguous_sends else "at-most-once"

    def fault_rates(self) -> dict[str, float]:
        """The sandbox's ``faults`` option."""
        share = self.fault_rate / len(FAULT_KINDS)
        rates: dict[str, float] = dict.fromkeys(FAULT_KINDS, share)
        rates["retry_after"] = self.retry_after
        rates["slow_reply_delay"] = self.slow_reply_delay
        return rates

    def retry_policy(self) -> RetryPolicy:
        """Real retries with millisecond backoff, no deadline and no retry budget."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_backoff=0.002,
            max_backoff=0.02,
            max_retry_after=self.retry_after * 2,
            deadline=None,
            retry_ambiguous_sends=self.retry_ambiguous_sends,
            budget=None,
        )


@attrs.frozen(kw_only=True)
class SoakReport:
    """What one soak run did, and which invariants it broke (``problems``)."""

    settings: SoakSettings
    sends: int
    outcomes: dict[str, int]
    faults: dict[str, int]
    faults_after_accept: int
    accepted: int
    duplicates: int
    attempts: int
    tokens_issued: int
    tokens_revoked: int
    token_fetch_failures: dict[str, int]
    """Token fetches that failed (a client timeout while the loop is overloaded): such a
    failure uses one of a call's attempts without an HTTP request to the API."""
    wall_time: float
    problems: list[str]
    misreported: dict[str, int]
    """Sends reported as certainly failed (``outcome_unknown`` False) that the sandbox accepted,
    by outcome kind: a send the caller would wrongly believe safe to repeat."""

    @property
    def ok(self) -> bool:
        """True when every invariant held."""
        return not self.problems and not self.misreported


def outcome_kind(outcome: SendOutcome) -> str:
    """``sent``, or the error's class, status and whether the send may have reached Routee."""
    if outcome.ok:
        return "sent"
    error = outcome.error
    kind = type(error).__name__
    status = getattr(error, "status", None)
    if status is not None:
        kind += f" {status}"
    if outcome.outcome_unknown:
        kind += " (outcome unknown)"
    return kind


class _Seen(NamedTuple):
    """What the checks need of one outcome (a few fields, not the whole ``SendOutcome``)."""

    position: int
    seq: int
    kind: str
    tracking_id: str | None
    both_or_neither: bool
    typed: bool
    unknown: bool
    attempts: int
    retryable: bool
    ambiguous: bool

    @classmethod
    def of(cls, outcome: SendOutcome) -> _Seen:
        error = outcome.error
        decision = classify(error) if error is not None else None
        return cls(
            position=outcome.index,
            seq=outcome.request.seq,
            kind=outcome_kind(outcome),
            tracking_id=outcome.result.tracking_id if outcome.result is not None else None,
            both_or_neither=(outcome.result is None) == (error is None),
            typed=error is None or isinstance(error, RouteeError),
            unknown=outcome.outcome_unknown,
            attempts=outcome.attempts,
            retryable=decision is not None,
            ambiguous=decision is not None and decision.ambiguous,
        )


class _CountingProvider:
    """The sandbox's credentials, counting the token fetches that fail (and how)."""

    def __init__(self, inner: ClientCredentials) -> None:
        self.inner = inner
        self.failures: collections.Counter[str] = collections.Counter()

    async def fetch_token(self, http: aiohttp.ClientSession, auth_url: str) -> AccessToken:
        try:
            return await self.inner.fetch_token(http, auth_url)
        except Exception as exc:
            self.failures[type(exc).__name__] += 1
            raise


class _Watch(logging.Handler):
    """Collects log records at WARNING and above from every logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def approved_otp_template(sb: Sandbox) -> str:
    """Create an OTP template (``{{pin}}``) in the sandbox and approve it; returns its id."""
    async with RouteeViberClient(
        credentials=sb.credentials, base_url=sb.base_url, auth_url=sb.auth_url
    ) as client:
        template = await client.templates.create(
            sb.sender_id,
            CreateTemplate(
                TemplateCategory.OTP,
                [TemplateParam("pin")],
                [TemplateLocale("en", "Your code is {{pin}}")],
                [VarExample("pin", "123456")],
            ),
        )
    sb.approve(template.template_id)
    return template.template_id


def _messages(sender: str, template_id: str, count: int) -> Iterator[SendMessage]:
    for index in range(count):
        yield SendMessage(sender, recipient_for(index), template_id, "en", {"pin": pin_for(index)})


async def run_soak(settings: SoakSettings) -> SoakReport:
    """Run one soak and check its invariants (see the module's docstring)."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    unraisable: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
    watch = _Watch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = await _soak(settings)
            gc.collect()  # unclosed sessions and connectors warn when collected
            await asyncio.sleep(0)
    finally:
        root.removeHandler(watch)
        sys.unraisablehook = previous_hook
        loop.set_exception_handler(previous_handler)
    problems = report.problems
    problems += [f"warning: {w.category.__name__}: {w.message}" for w in caught]
    problems += [f"unraisable exception: {text}" for text in unraisable]
    problems += [f"loop exception: {context.get('message')}" for context in loop_errors]
    problems += [
        f"logged {record.levelname} by {record.name}: {record.getMessage()}"
        for record in watch.records
    ]
    return report


async def _soak(settings: SoakSettings) -> SoakReport:
    count = settings.count
    problems: list[str] = []
    outcomes: list[_Seen] = []
    revoked = 0
    async with Sandbox(
        moderation_delay=None,
        delivery_delay=0.05,
        fault_after_accept_share=settings.fault_after_accept_share,
        seed=settings.seed,
    ) as sb:
        template_id = await approved_otp_template(sb)
        sb.set_faults(settings.fault_rates())
        revoke_after = None if settings.revoke_at is None else int(count * settings.revoke_at)
        started = time.perf_counter()
        provider = _CountingProvider(sb.credentials)
        async with RouteeViberClient(
            credentials=provider,
            base_url=sb.base_url,
            auth_url=sb.auth_url,
            max_concurrency=settings.concurrency,
            retry=settings.retry_policy(),
            timeout=settings.timeout,
            forbidden_refresh_after=0.0,
        ) as client:
            async for outcome in client.messages.send_many(
                _messages(sb.sender_id, template_id, count), concurrency=settings.concurrency
            ):
                outcomes.append(_Seen.of(outcome))
                if len(outcomes) == revoke_after:
                    revoked = sb.revoke_tokens()
        wall_time = time.perf_counter() - started
        sb.set_faults(None)
        accepted = sb.messages
        misreported: collections.Counter[str] = collections.Counter()
        problems += _check(
            settings,
            outcomes,
            accepted,
            sb.duplicate_seq_count,
            misreported,
            token_failures=sum(provider.failures.values()),
        )
        return SoakReport(
            settings=settings,
            sends=count,
            outcomes=dict(collections.Counter(o.kind for o in outcomes).most_common()),
            faults=sb.fault_counts,
            faults_after_accept=sb.faults_after_accept,
            accepted=len(accepted),
            duplicates=sb.duplicate_seq_count,
            attempts=sum(o.attempts for o in outcomes),
            tokens_issued=sb.tokens_issued,
            tokens_revoked=revoked,
            token_fetch_failures=dict(provider.failures),
            wall_time=wall_time,
            problems=problems,
            misreported=dict(misreported),
        )


def _check(
    settings: SoakSettings,
    outcomes: list[_Seen],
    accepted: Sequence[Any],
    duplicates: int,
    misreported: collections.Counter[str],
    *,
    token_failures: int,
) -> list[str]:
    problems: list[str] = []
    indexes = collections.Counter(o.position for o in outcomes)
    if sorted(indexes) != list(range(settings.count)) or max(indexes.values(), default=1) != 1:
        missing = settings.count - len(indexes)
        repeated = sum(1 for n in indexes.values() if n > 1)
        problems.append(f"outcomes: {missing} input(s) without one, {repeated} with several")
    accepted_seqs = collections.Counter(m.seq for m in accepted)
    accepted_ids = {m.tracking_id for m in accepted}
    our_seqs = {o.seq for o in outcomes}
    if len(our_seqs) != len(outcomes):
        problems.append("two inputs were given the same seq")
    strangers = set(accepted_seqs) - our_seqs
    if strangers:
        problems.append(f"the sandbox accepted {len(strangers)} seq(s) no input carries")
    at_most_once = not settings.retry_ambiguous_sends
    if at_most_once and duplicates:
        problems.append(f"at-most-once: the sandbox accepted {duplicates} repeated seq(s)")
    kinds: collections.Counter[str] = collections.Counter()
    for seen in outcomes:
        if seen.both_or_neither:
            kinds["result and error both set or both missing"] += 1
            continue
        if seen.tracking_id is not None:
            if seen.tracking_id not in accepted_ids:
                kinds["sent, but the sandbox has no such tracking id"] += 1
            if at_most_once and accepted_seqs[seen.seq] != 1:
                kinds["sent, but accepted other than once"] += 1
            continue
        if not seen.typed:
            kinds[f"untyped error ({seen.kind})"] += 1
            continue
        if at_most_once and accepted_seqs[seen.seq] > 1:
            kinds["failed, and accepted more than once"] += 1
        if not seen.unknown and accepted_seqs[seen.seq]:
            misreported[seen.kind] += 1
        # A retryable failure gets the policy's attempts; a failed token fetch uses one too,
        # without an HTTP request, so the count may then be lower.
        gave_up_early = seen.retryable and seen.attempts < settings.max_attempts
        if gave_up_early and not (at_most_once and seen.ambiguous) and not token_failures:
            kinds[f"{seen.kind} after {seen.attempts} attempt(s)"] += 1
    problems += [f"{n} outcome(s): {what}" for what, n in sorted(kinds.items())]
    return problems


def format_report(report: SoakReport) -> str:
    """The figures of one run, for people."""
    s = report.settings
    rate = report.sends / report.wall_time if report.wall_time else 0.0
    faults = sum(report.faults.values())
    lines = [
        f"soak [{s.mode}]: {report.sends} sends, {s.fault_rate:.0%} faults, "
        f"concurrency {s.concurrency}, seed {s.seed}, max_attempts {s.max_attempts}, "
        f"timeout {s.timeout}s",
        f"  wall time      {report.wall_time:.1f} s ({rate:.0f} sends/s), "
        f"{report.attempts} HTTP attempts",
        f"  faults         {faults} injected, {report.faults_after_accept} after acceptance; "
        f"all {report.tokens_revoked} live token(s) revoked mid-run; "
        f"{report.tokens_issued} tokens issued, "
        f"{sum(report.token_fetch_failures.values())} token fetch(es) failed"
        + (f" {report.token_fetch_failures}" if report.token_fetch_failures else ""),
    ]
    lines += [f"    {kind:<22} {n}" for kind, n in report.faults.items()]
    lines.append("  outcomes")
    lines += [f"    {kind:<40} {n}" for kind, n in report.outcomes.items()]
    lines.append(
        f"  sandbox        {report.accepted} accepted, {report.duplicates} duplicate seq(s)"
    )
    if report.misreported:
        total = sum(report.misreported.values())
        lines.append(f"  MISREPORTED    {total} send(s) accepted but reported certainly failed:")
        lines += [f"    {kind:<40} {n}" for kind, n in report.misreported.items()]
    if report.problems:
        lines.append(f"  PROBLEMS ({len(report.problems)})")
        lines += [f"    - {problem}" for problem in report.problems]
    if report.ok:
        lines.append("  invariants     all held")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="send_many against the sandbox with injected faults of every kind",
    )
    parser.add_argument("--count", type=int, default=100_000, help="sends per mode (100000)")
    parser.add_argument(
        "--fault-rate", type=float, default=0.25, help="share of faulted requests (0.25)"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="sends in flight (50)")
    parser.add_argument("--seed", type=int, default=1, help="the sandbox's random seed (1)")
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="both",
        help="at-most-once (retry_ambiguous_sends=False), retry, or both (default)",
    )
    parser.add_argument(
        "--timeout", type=float, default=0.5, help="client timeout per attempt (0.5 s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; exit status 1 when any invariant broke, 2 on bad options."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        runs = [
            SoakSettings(
                count=args.count,
                fault_rate=args.fault_rate,
                concurrency=args.concurrency,
                seed=args.seed,
                retry_ambiguous_sends=retry,
                timeout=args.timeout,
                slow_reply_delay=max(0.8, args.timeout * 1.6),
            )
            for retry in MODES[args.mode]
        ]
    except ValueError as exc:
        parser.error(str(exc))
    failed = False
    for settings in runs:
        report = asyncio.run(run_soak(settings))
        print(format_report(report), flush=True)
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
