"""``routee-viber demo``: waits for callbacks while they arrive, and explains its summary."""

from __future__ import annotations

import io
import logging
from collections import Counter

import pytest

from routee_viber_async import DeliveryStatus
from routee_viber_async.cli._demo import QUIET_PERIOD, _notes, run_demo, wait_while_arriving


class Arrivals:
    """A fake clock and a scripted stream of callbacks arriving at given times."""

    def __init__(self, times: list[float], expected: int) -> None:
        self.now = 0.0
        self._times = sorted(times)
        self.received = 0
        self.expected = expected
        self.waits = 0

    def clock(self) -> float:
        return self.now

    async def wait_for_change(self, timeout: float) -> None:  # noqa: ASYNC109
        """Advance to the next arrival, or by ``timeout`` when none comes sooner."""
        self.waits += 1
        if self.received < len(self._times) and self._times[self.received] <= self.now + timeout:
            self.now = max(self.now, self._times[self.received])
            while self.received < len(self._times) and self._times[self.received] <= self.now:
                self.received += 1
        else:
            self.now += timeout

    async def wait(self, quiet: float) -> bool:
        return await wait_while_arriving(
            received=lambda: self.received,
            done=lambda: self.received >= self.expected,
            wait_for_change=self.wait_for_change,
            quiet=quiet,
            clock=self.clock,
        )


async def test_a_long_run_is_waited_for_while_callbacks_keep_arriving() -> None:
    # 40,000 callbacks over 200 s, far past any fixed patience: the wait goes on to the end.
    arrivals = Arrivals([i * 0.005 for i in range(1, 40_001)], expected=40_000)
    assert await arrivals.wait(quiet=15.0) is True
    assert arrivals.now == pytest.approx(200.0)


async def test_gaps_shorter_than_the_quiet_period_do_not_end_the_wait() -> None:
    arrivals = Arrivals([14.0, 28.0, 42.0, 56.0], expected=4)
    assert await arrivals.wait(quiet=15.0) is True
    assert arrivals.now == pytest.approx(56.0)


async def test_the_wait_ends_once_no_callback_came_for_the_quiet_period() -> None:
    # Callbacks stop at 30 s with 2 of 5 still missing: the wait gives up 15 s later, and
    # a callback 20 s after the last one is never waited for.
    arrivals = Arrivals([10.0, 20.0, 30.0, 50.0], expected=5)
    assert await arrivals.wait(quiet=15.0) is False
    assert arrivals.now == pytest.approx(45.0)
    assert arrivals.received == 3


async def test_nothing_arriving_at_all_ends_after_the_quiet_period() -> None:
    arrivals = Arrivals([], expected=1)
    assert await arrivals.wait(quiet=15.0) is False
    assert arrivals.now == pytest.approx(15.0)


async def test_no_wait_when_everything_already_arrived() -> None:
    arrivals = Arrivals([], expected=0)
    assert await arrivals.wait(quiet=15.0) is True
    assert arrivals.waits == 0


def test_the_notes_explain_the_callbacks_and_the_stop() -> None:
    by_status = Counter({DeliveryStatus.SENT: 1000, DeliveryStatus.DELIVERED: 1000})
    notes = "\n".join(_notes(by_status, pending=0))
    assert "= 1000 SENT + 1000 DELIVERED: one callback per status change" in notes
    assert "no final callback" not in notes
    stalled = "\n".join(_notes(by_status, pending=3))
    assert f"no final callback: 3 OTPs; no callback arrived for {QUIET_PERIOD:.0f} s" in stalled


def test_the_notes_say_when_other_processes_had_the_cpu() -> None:
    busy = _notes(Counter(), pending=0, core_share=0.97)[-1]
    assert "this process used 97% of one core." in busy
    shared = _notes(Counter(), pending=0, core_share=0.4)[-1]
    assert "used 40% of one core; the rest of the time it waited (on a busy" in shared


async def test_a_healthy_demo_exits_0_and_explains_its_figures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="routee_viber_async"):
        assert await run_demo(count=200, concurrency=50, stream=out) == 0
    # The demo's own receiver takes its callbacks with a path token: no unprotected endpoint.
    assert not [r for r in caplog.records if "without a secret" in r.getMessage()]
    text = out.getvalue()
    assert "delivery callbacks received = 200 SENT + 200 DELIVERED" in text
    assert "sends per second: lower than the README's benchmark" in text
    assert "shares its CPU with the client" in text
    assert "CPU per send, this process" in text
    assert "no final callback:" not in text
