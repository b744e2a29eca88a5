"""Every simulator in one aiohttp server, each under the prefix of its vendor's base URL.

``serve_all`` is what ``python -m tests.simulators`` runs, and what a test in
this process can use to get the same layout on an ephemeral port.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import VendorSim
from .graph import GraphSim
from .http import json_response

MOUNTS: dict[str, str] = {
    "connectwise": "/connectwise/v4_6_release/apis/3.0",
    "autotask": "/autotask/atservicesrest",
    "halo": "/halo",
    "itglue": "/itglue",
    "hudu": "/hudu",
    "graph": "/graph",
}
"""Simulator name -> mount prefix; the prefix is the vendor's base URL path."""


def base_urls(origin: str, sims: Mapping[str, VendorSim]) -> dict[str, str]:
    """The URLs a client (and the integrations API's ``base_url``) needs, per vendor.

    ``m365`` is Graph's API base (``.../graph/v1.0``), ``m365_token_url`` its
    token endpoint for the simulator's tenant, and ``m365_token_url_template``
    the same with ``{tenant_id}`` left in (the shape of the m365 ``token_url``
    setting).
    """
    urls = {name: origin + MOUNTS[name] for name in sims}
    graph = sims.get("graph")
    if isinstance(graph, GraphSim):
        urls["m365"] = origin + MOUNTS["graph"] + "/v1.0"
        template = origin + MOUNTS["graph"] + "/login/{tenant_id}/oauth2/v2.0/token"
        urls["m365_token_url_template"] = template
        urls["m365_token_url"] = template.format(tenant_id=graph.tenant_id)
    return urls


def demo_integrations(origin: str, sims: Mapping[str, VendorSim]) -> dict[str, Any]:
    """What the dev stack PUTs on /v1/integrations/{provider} for the demo partner."""
    from .demo import DEMO_CREDENTIALS, DEMO_SETTINGS

    urls = base_urls(origin, sims)
    out: dict[str, Any] = {}
    for provider in ("connectwise", "autotask", "halo", "itglue", "hudu", "m365"):
        name = "graph" if provider == "m365" else provider
        if name not in sims:
            continue
        settings = dict(DEMO_SETTINGS.get(provider, {}))
        if provider == "m365":
            settings["token_url"] = urls["m365_token_url_template"]
        out[provider] = {
            "base_url": urls[provider],
            "credentials": DEMO_CREDENTIALS[provider],
            "settings": settings,
        }
    return out


def build_root(sims: Mapping[str, VendorSim]) -> web.Application:
    """A root app with each simulator mounted under its prefix, plus ``/healthz`` and
    ``/demo/integrations`` (the demo partner's integrations, for the dev stack)."""
    root = web.Application()

    async def healthz(request: web.Request) -> web.StreamResponse:
        origin = f"{request.scheme}://{request.host}"
        return json_response({"ok": True, "base_urls": base_urls(origin, sims)})

    async def integrations(request: web.Request) -> web.StreamResponse:
        return json_response(demo_integrations(f"{request.scheme}://{request.host}", sims))

    root.router.add_get("/healthz", healthz)
    root.router.add_get("/demo/integrations", integrations)
    for name, sim in sims.items():
        root.add_subapp(MOUNTS[name], sim.app)
    return root


@dataclass
class ServedSimulators:
    """A running server: its port, its URLs, and the simulators for direct access."""

    sims: Mapping[str, VendorSim]
    host: str
    port: int
    runner: web.AppRunner = field(repr=False)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        return base_urls(self.origin, self.sims)

    def ready_line(self) -> dict[str, Any]:
        """What the CLI prints when it is ready (one JSON object)."""
        return {
            "ready": True,
            "host": self.host,
            "port": self.port,
            "base_urls": self.urls,
            "admin": {name: self.origin + MOUNTS[name] + "/_sim" for name in self.sims},
        }

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve_all(
    sims: Mapping[str, VendorSim], host: str = "127.0.0.1", port: int = 0
) -> ServedSimulators:
    """Serve ``sims`` on ``host:port`` (0: any free port); ``close()`` it when done."""
    runner = web.AppRunner(build_root(sims), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return ServedSimulators(sims, host, int(bound), runner)
