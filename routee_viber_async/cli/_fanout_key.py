"""The key that encrypts the distributed fan-out's queued rows: ``ROUTEE_FANOUT_KEY``.

Queued chunks hold the rows' template parameters (pins among them), so they are sealed with
Fernet (AES-128-CBC with an HMAC-SHA256, from ``cryptography``) before they reach Redis: what
rests there is authenticated ciphertext. ``routee-viber keygen`` prints a fresh key; the
coordinator and every worker of a run need the same one.
"""

from __future__ import annotations

import hashlib
import os

from ._exit import EXIT_USAGE, CommandError

__all__ = ["ENV_NAME", "FanoutCipher", "FanoutKeyError", "generate_key", "load_cipher"]

ENV_NAME = "ROUTEE_FANOUT_KEY"

_HOW_TO = (
    f"make one with `routee-viber keygen` and give the same {ENV_NAME} to the coordinator "
    "(send-many --redis) and to every worker"
)


class FanoutKeyError(CommandError):
    """``ROUTEE_FANOUT_KEY`` is missing, malformed, or not the key a chunk was sealed with."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def generate_key() -> str:
    """A fresh key, as ``routee-viber keygen`` prints it."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class FanoutCipher:
    """Seals and opens chunks with one key (never shown: not in a repr, nor an error)."""

    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise FanoutKeyError(f"{ENV_NAME} is not a valid key: {_HOW_TO}") from None
        # Names the key without revealing it: a run records it, so that a worker holding
        # another key says so before it tries to open anything.
        self.key_id = hashlib.sha256(b"routee-viber fanout key\0" + key.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FanoutCipher(key_id={self.key_id!r})"

    def seal(self, plain: bytes) -> str:
        """``plain`` encrypted and authenticated (URL-safe text)."""
        return self._fernet.encrypt(plain).decode("ascii")

    def open(self, token: str) -> bytes:
        """The plain bytes of a sealed chunk; :class:`FanoutKeyError` if this key did not seal
        it (or it was altered)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise FanoutKeyError(
                f"this chunk was not sealed with this worker's {ENV_NAME} (or was altered): "
                f"{_HOW_TO}"
            ) from None


def load_cipher(environ: os._Environ[str] | dict[str, str] | None = None) -> FanoutCipher:
    """The cipher of ``ROUTEE_FANOUT_KEY``; :class:`FanoutKeyError` (saying how to make one)
    when it is missing or invalid."""
    env = os.environ if environ is None else environ
    key = env.get(ENV_NAME, "").strip()
    if not key:
        raise FanoutKeyError(f"{ENV_NAME} is not set: queued rows are encrypted with it; {_HOW_TO}")
    return FanoutCipher(key)
