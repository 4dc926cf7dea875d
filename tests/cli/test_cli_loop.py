"""A Ctrl-C while a command's event loop shuts down leaves at once, saying nothing more."""

from __future__ import annotations

import asyncio
import signal
import sys

# The command has ended; its loop's shutdown waits for a default-executor thread, which says
# "closing" once the main thread is in that shutdown (asyncio.Runner's own handler is gone).
_SCRIPT = """
import asyncio, signal, sys, threading, time
from routee_viber_async.cli._loop import run_command

returned = threading.Event()

def in_shutdown():
    # While the command runs, the handler is asyncio.Runner's own (a partial of its method).
    handler = signal.getsignal(signal.SIGINT)
    owner = getattr(getattr(handler, "func", handler), "__self__", None)
    return returned.is_set() and not isinstance(owner, asyncio.Runner)

def job():
    while not in_shutdown():
        time.sleep(0.005)
    print("closing", flush=True)
    time.sleep(10)

async def command():
    asyncio.get_running_loop().run_in_executor(None, job)
    returned.set()
    return 0

sys.exit(run_command(command()))
"""


async def test_a_ctrl_c_during_the_loops_shutdown_leaves_at_once_and_quietly() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SCRIPT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line == b"closing\n"
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # Before: KeyboardInterrupt out of the executor's shutdown, "Task was destroyed but it is
    # pending!" and a RuntimeWarning traceback, once the thread had ended.
    assert err.decode() == ""
    assert process.returncode == 130
