"""A test hook: ``send-many`` SIGKILLs itself at a chosen point of its journal protocol.

``ROUTEE_VIBER_CRASH_AT=POINT:N`` kills the process the ``N``-th time (1-based) it reaches
``POINT``, so that a test can stop a run exactly between two of its writes (a batch's pending
rows committed and its sends not started; results lines written and their outcomes not
committed) rather than hope a signal lands there. Unset, :func:`reached` does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["reached"]

_POINT, _, _COUNT = os.environ.get("ROUTEE_VIBER_CRASH_AT", "").partition(":")
_left = int(_COUNT) if _COUNT.isdigit() else 1


def reached(point: str) -> None:
    """Called at each crash point: SIGKILL this process if it is the chosen one, the N-th time."""
    global _left
    if point != _POINT:
        return
    _left -= 1
    if _left <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
