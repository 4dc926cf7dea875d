"""OAuth for the sandbox: client credentials (HTTP Basic), bearer tokens, expiry and revocation."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from typing import NamedTuple

__all__ = ["VIBER_SCOPES", "Grant", "TokenStore", "basic_credentials", "bearer_token"]

#: OAuth scopes that allow the Viber endpoints (seed 001: "typically viber or all").
VIBER_SCOPES = frozenset({"viber", "all"})


class Grant(NamedTuple):
    """Who a token or an application acts for: the account and the OAuth scope."""

    account_id: str
    scope: str


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(application_id, secret)`` from an ``Authorization: Basic ...`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    app_id, sep, secret = decoded.partition(":")
    return (app_id, secret) if sep else None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


class TokenStore:
    """Registered applications and the access tokens issued to them."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._clients: dict[str, tuple[str, Grant]] = {}
        self._tokens: dict[str, tuple[float, Grant]] = {}
        self.issued = 0
        """Tokens issued so far."""

    def register(
        self, application_id: str, secret: str, account_id: str, scope: str = "viber"
    ) -> None:
        """Let ``application_id``/``secret`` obtain ``scope`` tokens for ``account_id``."""
        self._clients[application_id] = (secret, Grant(account_id, scope))

    def authenticate(self, application_id: str, secret: str) -> Grant | None:
        """The grant of valid client credentials, or None."""
        known = self._clients.get(application_id)
        if known is None or not hmac.compare_digest(known[0].encode(), secret.encode()):
            return None
        return known[1]

    def issue(self, grant: Grant) -> str:
        """A new access token for ``grant``, valid for ``ttl`` seconds."""
        now = time.monotonic()
        if len(self._tokens) > 1000:
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (now + self.ttl, grant)
        self.issued += 1
        return token

    def check(self, token: str | None) -> Grant | None:
        """The grant of a valid, unexpired token, or None."""
        if token is None:
            return None
        entry = self._tokens.get(token)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._tokens[token]
            return None
        return entry[1]

    def revoke(self, token: str | None) -> bool:
        """Invalidate one token; True when it was valid."""
        return token is not None and self._tokens.pop(token, None) is not None

    def revoke_all(self) -> int:
        """Invalidate every issued token; how many there were."""
        count = len(self._tokens)
        self._tokens.clear()
        return count
