"""Running a command's coroutine, and a Ctrl-C while its event loop shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any

from ._exit import EXIT_INTERRUPTED

__all__ = ["run_command"]


def run_command(command: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(command)``, but a Ctrl-C once the command has ended leaves at once.

    The command has said its outcome by then; what is left is the loop's shutdown (async
    generators, the default executor's threads). A SIGINT there would raise KeyboardInterrupt
    out of the middle of it and print asyncio's complaints about the task it abandoned.
    """
    runner = asyncio.Runner()
    try:
        return runner.run(command)
    finally:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, _leave_interrupted)
            try:
                runner.close()
            finally:
                signal.signal(signal.SIGINT, previous)
        else:  # signal handlers can only be set from the main thread
            runner.close()


def _leave_interrupted(signum: int, frame: FrameType | None) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(EXIT_INTERRUPTED)
