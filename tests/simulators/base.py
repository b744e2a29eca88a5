"""The machinery every vendor simulator shares.

A simulator is an aiohttp application that answers a vendor's paths (relative
to the vendor's base URL) from in-memory state. In front of the vendor logic,
one middleware does, in this order, for every request but the ``/_sim/`` admin
routes:

1. record it (monotonic and wall time, method, path, query, headers, body);
2. injected faults (:meth:`VendorSim.fail_next`, :meth:`VendorSim.hang_next`);
3. the concurrency limit (Autotask's 3 in flight) and the rolling-window rate
   limit, both answered with the vendor's 429 (and ``Retry-After`` unless the
   simulator is told not to send one);
4. the configured ``latency``;
5. the vendor's credentials check (its documented 401 or 403);
6. the vendor handler; a :class:`SimHTTPError` raised anywhere becomes its response.

Faults come first so a test gets exactly the failure it asked for; requests
answered by a fault do not take a slot of the rate-limit window. Rate limiting
comes before authentication (a server throttles before it looks up a key), so a
flood of bad-key requests is throttled too.

The ``/_sim/`` admin routes (never recorded, never limited) are in :mod:`.admin`.
Measurements for assertions: :meth:`VendorSim.max_in_any_window`,
:attr:`VendorSim.rejected_429`, :attr:`VendorSim.max_concurrency`,
:attr:`VendorSim.requests`. Token and discovery endpoints (``is_exempt``) are
outside both limits and these counts, but are recorded.
"""

import abc
import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from .admin import ADMIN, MARKER, add_admin_routes
from .faults import Fault, FaultQueue
from .http import JSONDict, SimHTTPError, json_response, text_response
from .limits import RateLimit, RollingWindow, max_in_window, retry_after_seconds
from .recording import RecordedRequest, parse_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Default = Literal["default"]


class VendorSim(abc.ABC):
    """Base class: subclasses add the vendor's routes, credentials check and bodies."""

    name: ClassVar[str]
    DEFAULT_RATE_LIMIT: ClassVar[RateLimit | None] = None
    DEFAULT_CONCURRENCY_LIMIT: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        rate_limit: RateLimit | Default | None = "default",
        concurrency_limit: int | Default | None = "default",
        retry_after_header: bool = True,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_recorded: int | None = None,
    ) -> None:
        self.clock = clock
        self.latency = latency
        self.retry_after_header = retry_after_header
        self.rate_limit = self.DEFAULT_RATE_LIMIT if rate_limit == "default" else rate_limit
        self.concurrency_limit = (
            self.DEFAULT_CONCURRENCY_LIMIT if concurrency_limit == "default" else concurrency_limit
        )
        self._window = RollingWindow(self.rate_limit, clock) if self.rate_limit else None
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._limited_times: list[float] = []
        self._seq = 0
        self.faults = FaultQueue()
        self.rejected_by_window = 0
        self.rejected_by_concurrency = 0
        self.in_flight = 0
        self.max_concurrency = 0
        self._release = asyncio.Event()
        self.app = web.Application(middlewares=[self._build_middleware()])
        self._marker = add_admin_routes(self, self.app.router)
        self.add_routes(self.app.router)
        self.app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        self.app.on_shutdown.append(self._wake_hung)

    # ----------------------------------------------------------------- vendor hooks

    @abc.abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the vendor's routes (paths relative to its base URL)."""

    @abc.abstractmethod
    def check_auth(self, request: web.Request) -> web.Response | None:
        """None when the request's credentials are valid, else the vendor's refusal."""

    @abc.abstractmethod
    def error_response(self, status: int, message: str) -> web.Response:
        """The vendor's usual error for ``status`` (injected faults, unknown paths)."""

    @abc.abstractmethod
    def rate_limited_response(self) -> web.Response:
        """The vendor's 429 (``Retry-After`` is added by the base)."""

    def concurrency_limited_response(self) -> web.Response:
        return self.rate_limited_response()

    def is_exempt(self, request: web.Request, path: str) -> bool:
        """True for requests outside the rate limit (token and discovery endpoints)."""
        return False

    def is_auth_exempt(self, request: web.Request, path: str) -> bool:
        """True for requests that carry no credentials by design (token endpoints)."""
        return False

    @abc.abstractmethod
    def state(self) -> JSONDict:
        """Everything the simulator holds, as JSON (``GET /_sim/state``)."""

    @abc.abstractmethod
    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """Add records from JSON (``POST /_sim/seed``); returns what was created."""

    @abc.abstractmethod
    def reset_state(self) -> None:
        """Forget every record (the vendor's data, not the requests or faults)."""

    def extra_config(self) -> JSONDict:
        """Vendor-specific settings shown by and accepted at ``/_sim/config``."""
        return {}

    def configure_extra(self, key: str, value: Any) -> None:
        raise ValueError(f"unknown setting {key!r}")

    # ------------------------------------------------------------- python test API

    @property
    def prefix(self) -> str:
        """Where the app is mounted ('' when served alone), read from its own router."""
        return self._marker.canonical[: -len(MARKER)]

    def base_url(self, request: web.Request) -> str:
        """The vendor base URL this request reached (for links the vendor sends back)."""
        return f"{request.scheme}://{request.host}{self.prefix}"

    def fail_next(
        self,
        n: int,
        status: int,
        body: Any = None,
        retry_after: float | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer the next ``n`` matching requests with ``status`` (and the vendor's body)."""
        fault = Fault(
            n, status, body, retry_after, path_prefix, method, headers=dict(headers or {})
        )
        self.faults.add(fault)
        return fault

    def hang_next(
        self,
        n: int = 1,
        *,
        seconds: float | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
        status: int = 504,
    ) -> Fault:
        """Sleep on the next ``n`` matching requests longer than any client waits.

        A hung request is woken (and answered ``status``) by :meth:`reset` or at
        shutdown, so a test's runner closes promptly.
        """
        fault = Fault(n, status, None, None, path_prefix, method, hang=True)
        if seconds is not None:
            fault.hang_seconds = seconds
        self.faults.add(fault)
        return fault

    def set_rate_limit(self, rate_limit: RateLimit | None) -> None:
        self.rate_limit = rate_limit
        self._window = RollingWindow(rate_limit, self.clock) if rate_limit else None

    @property
    def rejected_429(self) -> int:
        """Requests the simulator's limits refused (injected 429s not included)."""
        return self.rejected_by_window + self.rejected_by_concurrency

    def max_in_any_window(self, window: float | None = None) -> int:
        """Most rate-limited requests (accepted or refused) any rolling window ever held."""
        length = window if window is not None else (self.rate_limit and self.rate_limit.window)
        if not length:
            raise ValueError(f"{self.name} has no rate limit: pass a window length")
        return max_in_window(self._limited_times, length)

    def find_requests(
        self, method: str | None = None, path_prefix: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]

    async def wait_for_requests(
        self,
        count: int = 1,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Wait until ``count`` matching requests were answered (a client runs elsewhere)."""
        deadline = time.monotonic() + timeout
        while True:
            done = [r for r in self.find_requests(method, path_prefix) if r.status is not None]
            if len(done) >= count:
                return done
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(done)} of {count} requests to {self.name} in {timeout}s")
            await asyncio.sleep(0.01)

    def metrics(self) -> JSONDict:
        window = self.rate_limit.window if self.rate_limit else None
        return {
            "requests": self._seq,
            "limited_requests": len(self._limited_times),
            "max_in_any_window": max_in_window(self._limited_times, window) if window else None,
            "rejected_429": self.rejected_429,
            "rejected_by_window": self.rejected_by_window,
            "rejected_by_concurrency": self.rejected_by_concurrency,
            "max_concurrency": self.max_concurrency,
            "in_flight": self.in_flight,
            "faults_served": self.faults.served,
            "in_current_window": self._window.in_window() if self._window else None,
        }

    def config(self) -> JSONDict:
        rate = self.rate_limit
        return {
            "latency": self.latency,
            "rate_limit": {"limit": rate.limit, "window": rate.window} if rate else None,
            "concurrency_limit": self.concurrency_limit,
            "retry_after_header": self.retry_after_header,
            **self.extra_config(),
        }

    def configure(self, settings: Mapping[str, Any]) -> None:
        for key, value in settings.items():
            if key == "latency":
                self.latency = float(value)
            elif key == "rate_limit":
                self.set_rate_limit(
                    None
                    if value is None
                    else RateLimit(int(value["limit"]), float(value["window"]))
                )
            elif key == "concurrency_limit":
                self.concurrency_limit = None if value is None else int(value)
            elif key == "retry_after_header":
                self.retry_after_header = bool(value)
            else:
                self.configure_extra(key, value)

    def reset(self, *, state: bool = True, requests: bool = True, faults: bool = True) -> None:
        """Back to a fresh simulator (settings kept); hung requests are woken."""
        if state:
            self.reset_state()
        if requests:
            self.requests.clear()
            self._limited_times.clear()
            self._seq = 0
            self.rejected_by_window = self.rejected_by_concurrency = 0
            self.max_concurrency = self.in_flight
            self.faults.served = 0
            self.set_rate_limit(self.rate_limit)
        if faults:
            self.faults.clear()
        self._release.set()
        self._release = asyncio.Event()

    # ------------------------------------------------------------------ internals

    def _with_retry_after(self, response: web.StreamResponse, wait: float | None) -> None:
        if self.retry_after_header and wait is not None:
            response.headers["Retry-After"] = str(retry_after_seconds(wait))

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.body is None:
            response = self.error_response(fault.status, "injected fault")
        elif isinstance(fault.body, str):
            response = text_response(fault.body, fault.status)
        else:
            response = json_response(fault.body, fault.status)
        response.headers.update(fault.headers)
        if fault.retry_after is not None:
            value = fault.retry_after
            response.headers["Retry-After"] = str(int(value) if value == int(value) else value)
        return response

    async def _record(self, request: web.Request, path: str, limited: bool) -> RecordedRequest:
        self._seq += 1
        record = RecordedRequest(
            seq=self._seq,
            monotonic=self.clock(),
            wall=time.time(),
            method=request.method,
            path=path,
            query=dict(request.query),
            query_string=request.query_string,
            headers=CIMultiDict(request.headers),
            body=await parse_body(request),
            limited=limited,
        )
        self.requests.append(record)
        if limited:
            self._limited_times.append(record.monotonic)
        return record

    async def _guarded(
        self, request: web.Request, handler: Handler, path: str, record: RecordedRequest
    ) -> web.StreamResponse:
        fault = self.faults.take(request.method, path)
        if fault is not None:
            record.outcome = "hang" if fault.hang else "fault"
            if fault.hang:
                await self._hang(request, fault.hang_seconds)
            elif self.latency:
                await asyncio.sleep(self.latency)
            return self._fault_response(fault)
        if record.limited:
            if self.concurrency_limit is not None and self.in_flight > self.concurrency_limit:
                self.rejected_by_concurrency += 1
                record.outcome = "concurrency_limited"
                response = self.concurrency_limited_response()
                self._with_retry_after(response, 1.0)
                return response
            wait = self._window.try_acquire(record.monotonic) if self._window else None
            if wait is not None:
                self.rejected_by_window += 1
                record.outcome = "rate_limited"
                response = self.rate_limited_response()
                self._with_retry_after(response, wait)
                return response
        if self.latency:
            await asyncio.sleep(self.latency)
        if not self.is_auth_exempt(request, path):
            refusal = self.check_auth(request)
            if refusal is not None:
                record.outcome = "auth_failed"
                return refusal
        record.outcome = "ok"
        return await handler(request)

    async def _hang(self, request: web.Request, seconds: float) -> None:
        """Sleep up to ``seconds``; stop early on reset, shutdown, or when the client left.

        Noticing the client's departure frees its in-flight slot (Autotask's
        limit of 3) as soon as its timeout fires, instead of at the end of the test.
        """
        deadline = self.clock() + seconds
        release = self._release
        while not release.is_set() and self.clock() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 0.05)

    def _build_middleware(self) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path[len(self.prefix) :] or "/"
            if path.startswith(ADMIN):
                try:
                    return await handler(request)
                except SimHTTPError as exc:
                    return exc.response
            limited = not self.is_exempt(request, path)
            record = await self._record(request, path, limited)
            if limited:
                self.in_flight += 1
                self.max_concurrency = max(self.max_concurrency, self.in_flight)
            try:
                try:
                    response = await self._guarded(request, handler, path, record)
                except SimHTTPError as exc:
                    response = exc.response
                except Exception:
                    record.status, record.outcome = 500, "error"  # a simulator bug: aiohttp's 500
                    raise
            finally:
                if limited:
                    self.in_flight -= 1
            record.status = response.status
            return response

        return middleware

    async def _unknown_path(self, request: web.Request) -> web.StreamResponse:
        return self.error_response(404, f"no route for {request.method} {request.path}")

    async def _wake_hung(self, app: web.Application) -> None:
        self._release.set()
