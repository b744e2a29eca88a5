"""An OAuth 2.0 client-credentials token (RFC 6749 §4.4), as Halo and Microsoft Entra ID
issue them: the :class:`~services.handlers.adapters.http.Auth` of those connectors.

One token is cached until ``margin`` seconds before ``expires_in`` runs out (half its
life when that is shorter than twice the margin), and fetched by one request at a
time. Token requests go straight through the session, not the pacer: the vendors'
limits do not count them. A refusal (400, 401, 403) is :class:`VendorAuthError`: the
client, secret, tenant or scope do not work. 429, 5xx, timeouts and dropped
connections are retried with the policy's back-off (honouring ``Retry-After``) until
its ``give_up_after``, then :class:`VendorUnavailable`. The client secret is removed
from every text this raises, and the token never appears in a repr or a log.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.handlers.adapters.http import RETRY_AFTER_CAP, RetryPolicy, VendorHttp, retry_after
from services.handlers.domain.errors import VendorAuthError, VendorRejected, VendorUnavailable

log = logging.getLogger(__name__)

HIDDEN = "[hidden]"


def scrub(text: str, *secrets: str) -> str:
    """``text`` without any of ``secrets`` in it (empty ones ignored)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return text


def parse_json(text: str) -> Any:
    """A body as JSON, None when it is empty or not JSON."""
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _Later:
    """A token request to try again after ``wait`` seconds."""

    wait: float
    problem: str


class ClientCredentialsToken:
    """A vendor's token: subclasses say how long before expiry to drop it
    (``margin``), what lifetime to assume when none is given, and how to read the
    vendor's words out of a refusal (:meth:`reason`)."""

    margin: float = 60.0
    default_lifetime: float = 3600.0

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        form: Mapping[str, str],
        policy: RetryPolicy,
    ) -> None:
        self._session = session
        self._url = token_url
        self._form = dict(form)
        self._policy = policy
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cached={self._token is not None})"

    def reason(self, body: Any) -> str:
        """The vendor's words in a refused token request's body."""
        return "no reason given"

    async def headers(self, http: VendorHttp) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    def invalidate(self) -> bool:
        self._token = None
        return True

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            token, lifetime = await self._fetch()
            margin = self.margin if lifetime >= 2 * self.margin else lifetime / 2
            self._token, self._expires_at = token, time.monotonic() + lifetime - margin
            return token

    async def _fetch(self) -> tuple[str, float]:
        """A new token and its lifetime, retrying what may be retried."""
        deadline = time.monotonic() + self._policy.give_up_after
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(attempt)
            if not isinstance(outcome, _Later):
                return outcome
            if time.monotonic() + outcome.wait > deadline:
                raise VendorUnavailable(outcome.problem)
            await asyncio.sleep(outcome.wait)

    async def _attempt(self, attempt: int) -> tuple[str, float] | _Later:
        """One token request: the token, a refusal (raised), or how long to wait."""
        try:
            status, headers, body = await self._post()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return _Later(self._backoff(attempt), f"no token: {type(exc).__name__}")
        if status == 200:
            return self._issued(body)
        reason = scrub(self.reason(body), self._form.get("client_secret", ""))
        if status in (400, 401, 403):
            raise VendorAuthError(f"the token request was refused: {reason}", status)
        if status != 429 and status < 500:
            raise VendorRejected(f"the token request failed: {reason}", status)
        hinted = retry_after(headers)
        wait = self._backoff(attempt) if hinted is None else min(hinted, RETRY_AFTER_CAP)
        return _Later(wait, f"no token: HTTP {status}")

    async def _post(self) -> tuple[int, Mapping[str, str], Any]:
        timeout = aiohttp.ClientTimeout(total=self._policy.request_timeout)
        async with self._session.post(
            self._url, data=self._form, headers={"Accept": "application/json"}, timeout=timeout
        ) as resp:
            text = await resp.text(errors="replace")
            log.debug("%s request: HTTP %s", type(self).__name__, resp.status)
            return resp.status, resp.headers, parse_json(text)

    def _issued(self, body: Any) -> tuple[str, float]:
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise VendorAuthError("the token endpoint answered no access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, str) and lifetime.isdigit():  # Entra's v1 endpoint: strings
            lifetime = int(lifetime)
        ok = isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0
        return token, float(lifetime) if ok else self.default_lifetime

    def _backoff(self, attempt: int) -> float:
        base = self._policy.initial * 2 ** min(attempt - 1, 30)
        jitter = self._random.uniform(0, self._policy.initial)
        return float(min(base + jitter, self._policy.maximum))
