"""Opaque bearer tokens with a lifetime, for the two OAuth2 vendors (Halo, Graph).

Tokens are random strings remembered with their expiry on the simulator's
monotonic clock; ``lifetime`` is configurable so a test can make a token
expire in a fraction of a second and check that a client refreshes it.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedToken:
    value: str
    expires_at: float
    subject: str
    """Who it was issued to: the client id (and for Graph the tenant)."""


class TokenIssuer:
    def __init__(self, lifetime: float, clock: Callable[[], float]) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self.issued = 0

    def issue(self, subject: str) -> IssuedToken:
        token = IssuedToken(
            value=secrets.token_urlsafe(24),
            expires_at=self._clock() + self.lifetime,
            subject=subject,
        )
        self._tokens[token.value] = token
        self.issued += 1
        return token

    def check(self, value: str) -> IssuedToken | None:
        """The token if it was issued here and has not expired; None otherwise."""
        token = self._tokens.get(value)
        if token is None or self._clock() >= token.expires_at:
            return None
        return token

    def expire_all(self) -> None:
        """Make every issued token invalid (as a server-side revocation would)."""
        self._tokens.clear()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
