"""Development JWTs, signed like the policy service expects (docs/contract.md §4)."""

import secrets
from datetime import UTC, datetime, timedelta

import jwt

DEV_PARTNER = "demo-partner"
DEV_ROLE = "manager"
DEV_TTL = timedelta(hours=12)
ROLES = ("super", "primary", "manager", "technician", "read_only")
"""The contract's roles; other values are accepted so 403 paths can be tried."""


def new_secret() -> str:
    """A fresh HS256 secret for a dev stack (256 bits, URL-safe to paste in a shell)."""
    return secrets.token_urlsafe(32)


def make_token(
    secret: str,
    *,
    role: str = DEV_ROLE,
    partner_id: str = DEV_PARTNER,
    subject: str | None = None,
    ttl: timedelta = DEV_TTL,
) -> str:
    """An HS256 JWT with exactly the contract's claims: sub, partner_id, role, exp."""
    claims = {
        "sub": subject or f"dev-{role}",
        "partner_id": partner_id,
        "role": role,
        "exp": datetime.now(UTC) + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
