"""Exit codes and the one-line error report every command uses (cheap to import)."""

from __future__ import annotations

import sys
from typing import IO

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "print_error",
]

#: Done.
EXIT_OK = 0
#: Routee refused the request (other than a 400), could not be reached or timed out; a
#: ``track --wait`` without a final status; a ``send-many`` run with failed rows.
EXIT_FAILED = 1
#: Bad usage: options, input file, environment (credentials, URLs), a request Routee's rules
#: refuse (locally or by a 400), a sandbox that cannot listen.
EXIT_USAGE = 2
#: Interrupted by Ctrl-C (SIGINT), as shells report 128 + 2.
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """An expected failure of a command: print ``message`` on one line, exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def print_error(command: str, message: object, stream: IO[str] | None = None) -> None:
    """``routee-viber COMMAND: message`` on one line of stderr (newlines folded)."""
    out = stream if stream is not None else sys.stderr
    text = " ".join(str(message).split()) or "failed"
    print(f"routee-viber {command}: {text}", file=out, flush=True)
