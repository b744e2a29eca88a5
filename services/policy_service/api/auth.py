"""Bearer-token authentication: HS256 JWTs with sub, partner_id, role, exp (PyJWT)."""

import jwt
from pydantic import ValidationError

from services.policy_service.domain.auth import Principal

REQUIRED_CLAIMS = ("sub", "partner_id", "role", "exp")


class Unauthenticated(Exception):
    """No usable token: missing, malformed, wrongly signed, expired or incomplete."""


def authenticate(authorization: str | None, secret: str) -> Principal:
    """The principal of an ``Authorization: Bearer <jwt>`` header, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    try:
        return Principal(
            sub=str(claims["sub"]), partner_id=claims["partner_id"], role=str(claims["role"])
        )
    except ValidationError as exc:
        raise Unauthenticated("invalid token: bad partner_id claim") from exc


def issue_token(secret: str, *, sub: str, partner_id: str, role: str, ttl_seconds: int) -> str:
    """A signed token, for the dev stack and tests."""
    import time

    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "partner_id": partner_id, "role": role, "iat": now, "exp": now + ttl_seconds},
        secret,
        algorithm="HS256",
    )
