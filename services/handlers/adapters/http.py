"""The one HTTP client every vendor connector stands on.

It owns, in one place, what the connectors would otherwise each get a little
wrong (the model is openai-python's ``_base_client``):

- **auth**: an :class:`Auth` gives each request's headers; a token-based one
  (Halo, Microsoft Graph) is asked once to refresh when a 401 comes back;
- **pacing**: every request (not a token request) first takes a slot from the
  integration's :class:`Pacer`, which keeps each rolling window under the
  vendor's documented limit for every handler process of that partner;
- **retries**, decided in :meth:`VendorHttp._should_retry`: 429 and 5xx and
  timeouts and dropped connections are retried with capped, jittered
  exponential back-off, honouring ``Retry-After`` (seconds or an HTTP date;
  a 429 also pauses the whole integration, for every process), until
  ``give_up_after`` seconds have passed (then :class:`VendorUnavailable`);
  a request that is not idempotent (a create) is not repeated blindly once
  it may have reached the vendor: :class:`MaybeDone` tells the caller to
  search first;
- **errors** mapped to typed exceptions by status: 401/403
  :class:`VendorAuthError`, other 4xx :class:`VendorRejected` with the
  vendor's message (never our request's body, which may hold a password).
"""

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from prometheus_client import Counter

from services.handlers.domain.errors import (
    MaybeDone,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)

log = logging.getLogger(__name__)

RETRY_AFTER_CAP = 900.0


class Pacer(Protocol):
    """Slots for the requests of one integration (shared by every handler process)."""

    async def acquire(self) -> None:
        """Wait until a request may be sent without exceeding the vendor's limit."""
        ...

    async def pause(self, seconds: float) -> None:
        """The vendor said to wait (429 + Retry-After): nobody sends before then."""
        ...


class Slots(Protocol):
    """A limit on requests in flight (Autotask's 3 threads), across processes."""

    def hold(self) -> AbstractAsyncContextManager[None]: ...


class NoSlots:
    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        yield


class Auth(Protocol):
    async def headers(self, http: "VendorHttp") -> dict[str, str]:
        """Headers that authenticate one request (may fetch a token)."""
        ...

    def invalidate(self) -> bool:
        """Forget a cached token after a 401; True when a retry may then succeed."""
        ...


class StaticAuth:
    """Fixed headers (API keys, Basic auth)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    async def headers(self, http: "VendorHttp") -> dict[str, str]:
        return dict(self._headers)

    def invalidate(self) -> bool:
        return False


class Unpaced:
    """No limit (tests, and the benchmark's ceiling)."""

    async def acquire(self) -> None:
        return None

    async def pause(self, seconds: float) -> None:
        return None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text.strip() else None


@dataclass(frozen=True)
class RetryPolicy:
    give_up_after: float = 6 * 3600.0
    initial: float = 0.5
    maximum: float = 60.0
    request_timeout: float = 30.0


class VendorMetrics:
    def __init__(self, registry: Any) -> None:
        self.requests = Counter(
            "handlers_vendor_requests",
            "Requests sent to vendors, by provider and HTTP status (or error)",
            ["provider", "status"],
            registry=registry,
        )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` (or ``retry-after-ms``) in seconds, if the vendor sent one."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class VendorHttp:
    """Requests to one integration's ``base_url``."""

    system = "vendor"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        auth: Auth,
        pacer: Pacer,
        policy: RetryPolicy = RetryPolicy(),
        metrics: VendorMetrics | None = None,
        default_headers: Mapping[str, str] | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.pacer = pacer
        self.policy = policy
        self.metrics = metrics
        self.default_headers = dict(default_headers or {})
        self.slots = slots or NoSlots()
        self._random = random.Random()

    # -- hooks for the vendors -------------------------------------------------

    def error_message(self, answer: Answer) -> str:
        """The vendor's own words for an error (overridden per vendor's error shape)."""
        text = answer.text.strip()
        return f"HTTP {answer.status}: {text[:300]}" if text else f"HTTP {answer.status}"

    def is_rejection(self, answer: Answer) -> bool:
        """A 5xx that is really a refusal of this request (Autotask's validation 500s)."""
        return False

    # -- requests ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Answer:
        """Send, retrying what may be retried; the answer of a 2xx (or a typed error)."""
        idempotent = (
            method in ("GET", "PUT", "DELETE", "HEAD") if idempotent is None else idempotent
        )
        deadline = time.monotonic() + self.policy.give_up_after
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            await self.pacer.acquire()
            sent_headers = {
                **self.default_headers,
                **(await self.auth.headers(self)),
                **(headers or {}),
            }
            try:
                answer = await self._send(method, path, params, json_body, sent_headers)
            except aiohttp.ClientConnectorError as exc:  # never reached the vendor: safe
                self._count("connect_error")
                wait = self._backoff(attempt)
                self._give_up_if_late(deadline, wait, f"cannot connect: {exc.os_error}")
                await asyncio.sleep(wait)
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                self._count("timeout" if isinstance(exc, TimeoutError) else "connection_error")
                if not idempotent:
                    raise MaybeDone(f"no answer to {method} {path}: {type(exc).__name__}") from exc
                wait = self._backoff(attempt)
                self._give_up_if_late(deadline, wait, f"no answer: {type(exc).__name__}")
                await asyncio.sleep(wait)
                continue
            self._count(str(answer.status))
            if 200 <= answer.status < 300:
                return answer
            if answer.status == 401 and not refreshed and self.auth.invalidate():
                refreshed = True  # an expired token: one more try with a fresh one
                continue
            if answer.status in (401, 403):
                raise VendorAuthError(self.error_message(answer), answer.status)
            if answer.status == 429 or answer.status >= 500:
                if answer.status >= 500 and self.is_rejection(answer):
                    raise VendorRejected(self.error_message(answer), answer.status)
                if answer.status >= 500 and not idempotent:
                    raise MaybeDone(self.error_message(answer), answer.status)
                hinted = retry_after(answer.headers)
                wait = (
                    min(hinted, RETRY_AFTER_CAP) if hinted is not None else self._backoff(attempt)
                )
                if answer.status == 429:
                    await self.pacer.pause(wait)
                self._give_up_if_late(deadline, wait, self.error_message(answer), answer.status)
                await asyncio.sleep(wait)
                continue
            raise VendorRejected(self.error_message(answer), answer.status)

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str],
    ) -> Answer:
        timeout = aiohttp.ClientTimeout(total=self.policy.request_timeout)
        data = None
        if json_body is not None:
            data = json.dumps(json_body)
            if not any(k.lower() == "content-type" for k in headers):
                headers = {**headers, "Content-Type": "application/json"}
        async with (
            self.slots.hold(),
            self.session.request(
                method, self.url(path), params=params, data=data, headers=headers, timeout=timeout
            ) as resp,
        ):
            text = await resp.text(errors="replace")
            return Answer(resp.status, resp.headers, text)

    def _backoff(self, attempt: int) -> float:
        base = self.policy.initial * 2 ** min(attempt - 1, 30)
        return float(min(base + self._random.uniform(0, self.policy.initial), self.policy.maximum))

    @staticmethod
    def _give_up_if_late(
        deadline: float, wait: float, message: str, status: int | None = None
    ) -> None:
        if time.monotonic() + wait > deadline:
            raise VendorUnavailable(message, status)

    def _count(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels(self.system, status).inc()
