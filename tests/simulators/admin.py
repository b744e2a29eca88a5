"""The ``/_sim/`` admin routes every simulator app carries, for tests in other processes.

A test that runs the simulators as a subprocess (the dev stack, an end-to-end
test) seeds, inspects and breaks them over HTTP with the same operations the
Python API offers in-process:

=======  ===================  ===========================================================
GET      ``/_sim/state``      everything the simulator holds (vendor-shaped JSON)
POST     ``/_sim/seed``       add records (the vendor's ``seed`` format) → 201, what was made
POST     ``/_sim/reset``      ``{"state", "requests", "faults"}`` (each default true)
GET      ``/_sim/requests``   recorded requests (``?since=<seq>`` for the newer ones)
DELETE   ``/_sim/requests``   forget them (and the counters)
GET      ``/_sim/faults``     pending fault rules
POST     ``/_sim/faults``     add one rule or a list: ``{"n", "status", "body", "retry_after",
                              "path_prefix", "method", "headers", "hang", "hang_seconds"}``
DELETE   ``/_sim/faults``     drop every pending rule
GET      ``/_sim/metrics``    ``max_in_any_window``, ``rejected_429``, ``max_concurrency`` ...
GET      ``/_sim/config``     ``latency``, ``rate_limit``, ``concurrency_limit``,
                              ``retry_after_header`` and vendor settings (``token_lifetime``)
POST     ``/_sim/config``     change any of them
=======  ===================  ===========================================================

Errors in what is sent are 400 ``{"error": "..."}``. These routes are never
recorded, never rate limited, and need no credentials.
"""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import Fault
from .http import SimHTTPError, json_response

if TYPE_CHECKING:
    from .base import VendorSim

ADMIN = "/_sim/"
MARKER = "/_sim/state"
"""The admin resource whose (prefixed) path tells a simulator where it is mounted."""


async def _body(request: web.Request) -> Any:
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SimHTTPError(json_response({"error": f"invalid JSON: {exc}"}, 400)) from exc


def _call(call: Callable[[], Any]) -> Any:
    """Run an admin operation; bad input (KeyError, TypeError, ValueError) is a 400."""
    try:
        return call()
    except (KeyError, TypeError, ValueError) as exc:
        raise SimHTTPError(json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)) from exc


class AdminRoutes:
    def __init__(self, sim: "VendorSim") -> None:
        self.sim = sim

    async def state(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.sim.state())

    async def seed(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if not isinstance(body, dict):
            return json_response({"error": "the seed must be a JSON object"}, 400)
        return json_response(_call(lambda: self.sim.seed(body)), 201)

    async def reset(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        _call(
            lambda: self.sim.reset(
                state=bool(body.get("state", True)),
                requests=bool(body.get("requests", True)),
                faults=bool(body.get("faults", True)),
            )
        )
        return json_response({"reset": True})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        since = _call(lambda: int(request.query.get("since", "0")))
        return json_response([r.to_json() for r in self.sim.requests if r.seq > since])

    async def clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.sim.reset(state=False, requests=True, faults=False)
        return json_response({"cleared": True})

    async def faults(self, request: web.Request) -> web.StreamResponse:
        return json_response([f.to_json() for f in self.sim.faults.pending()])

    async def add_faults(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        specs = body if isinstance(body, list) else [body]
        added: list[Fault] = _call(lambda: [Fault.from_json(spec) for spec in specs])
        for fault in added:
            self.sim.faults.add(fault)
        return json_response([f.to_json() for f in added], 201)

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.sim.faults.clear()
        return json_response({"cleared": True})

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.sim.metrics())

    async def config(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.sim.config())

    async def configure(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if not isinstance(body, dict):
            return json_response({"error": "the settings must be a JSON object"}, 400)
        _call(lambda: self.sim.configure(body))
        return json_response(self.sim.config())


def add_admin_routes(sim: "VendorSim", router: web.UrlDispatcher) -> web.AbstractResource:
    """Register the admin routes of ``sim``; returns the marker resource."""
    admin = AdminRoutes(sim)
    marker = router.add_resource(MARKER)
    marker.add_route("GET", admin.state)
    router.add_post("/_sim/seed", admin.seed)
    router.add_post("/_sim/reset", admin.reset)
    router.add_get("/_sim/requests", admin.requests)
    router.add_delete("/_sim/requests", admin.clear_requests)
    router.add_get("/_sim/faults", admin.faults)
    router.add_post("/_sim/faults", admin.add_faults)
    router.add_delete("/_sim/faults", admin.clear_faults)
    router.add_get("/_sim/metrics", admin.metrics)
    router.add_get("/_sim/config", admin.config)
    router.add_post("/_sim/config", admin.configure)
    return marker
