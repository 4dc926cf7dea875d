"""The distributed tests' worker handle leaves no process behind for the next test."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from dist_helpers import Worker


async def test_kill_reaps_the_worker_before_the_test_ends(tmp_path: Path) -> None:
    # A killed child not yet reaped when the test's loop closes is reported, as an unclosed
    # transport, in whichever later test the garbage collector runs: so kill() must reap.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(600)"
    )
    worker = Worker(process, tmp_path / "worker.log")
    await worker.kill()
    assert process.returncode == -signal.SIGKILL
    await worker.kill()  # a second kill of a reaped worker is harmless
    assert process.returncode == -signal.SIGKILL
