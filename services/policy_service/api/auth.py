"""Bearer-token authentication: HS256 JWTs with sub, partner_id, role, exp (PyJWT)."""

import time
from collections import OrderedDict

import jwt
from pydantic import ValidationError

from services.policy_service.domain.auth import Principal

REQUIRED_CLAIMS = ("sub", "partner_id", "role", "exp")


class Unauthenticated(Exception):
    """No usable token: missing, malformed, wrongly signed, expired or incomplete."""


class VerifiedTokens:
    """Tokens verified in the last few seconds, with their principal: a client sends the
    same token on every request, and an HMAC check with PyJWT's claim handling costs
    about as much as the rest of a small request. An entry is never used past the
    token's own ``exp`` nor past ``ttl`` seconds; the cache holds at most ``size``
    tokens (the oldest go first). In memory only: never logged, never exported."""

    def __init__(self, size: int = 4096, ttl: float = 30.0) -> None:
        self.size, self.ttl = size, ttl
        self._known: OrderedDict[tuple[str, str], tuple[Principal, float]] = OrderedDict()

    def get(self, secret: str, token: str) -> Principal | None:
        found = self._known.get((secret, token))
        if found is None:
            return None
        principal, until = found
        if time.time() >= until:
            self._known.pop((secret, token), None)
            return None
        return principal

    def put(self, secret: str, token: str, principal: Principal, exp: float) -> None:
        self._known[(secret, token)] = (principal, min(exp, time.time() + self.ttl))
        while len(self._known) > self.size:
            try:
                self._known.popitem(last=False)
            except KeyError:  # emptied meanwhile (tests serve apps from threads)
                break


_VERIFIED = VerifiedTokens()


def authenticate(
    authorization: str | None, secret: str, verified: VerifiedTokens = _VERIFIED
) -> Principal:
    """The principal of an ``Authorization: Bearer <jwt>`` header, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    token = token.strip()
    known = verified.get(secret, token)
    if known is not None:
        return known
    principal, exp = _verify(token, secret)
    verified.put(secret, token, principal, exp)
    return principal


def _verify(token: str, secret: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    try:
        principal = Principal(
            sub=str(claims["sub"]), partner_id=claims["partner_id"], role=str(claims["role"])
        )
        return principal, float(claims["exp"])
    except (ValidationError, TypeError, ValueError) as exc:
        raise Unauthenticated("invalid token: bad partner_id claim") from exc


def issue_token(secret: str, *, sub: str, partner_id: str, role: str, ttl_seconds: int) -> str:
    """A signed token, for the dev stack and tests."""
    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "partner_id": partner_id, "role": role, "iat": now, "exp": now + ttl_seconds},
        secret,
        algorithm="HS256",
    )
