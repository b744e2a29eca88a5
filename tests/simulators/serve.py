"""Every simulator in one aiohttp server, each under the prefix of its vendor's base URL.

``serve_all`` is what ``python -m tests.simulators`` runs, and what a test in
this process can use to get the same layout on an ephemeral port. With an
``smtp_port`` it also runs the SMTP sink (:mod:`.smtp`), its pages under ``/smtp/``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import VendorSim
from .graph import GraphSim
from .http import json_response
from .smtp import SmtpSink

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


def demo_integrations(
    origin: str, sims: Mapping[str, VendorSim], smtp: SmtpSink | None = None
) -> dict[str, Any]:
    """What the dev stack PUTs on /v1/integrations/{provider} for the demo partner
    (``smtp`` only when the SMTP sink runs)."""
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
    if smtp is not None:
        out["smtp"] = smtp.demo_integration()
    return out


def build_root(sims: Mapping[str, VendorSim], smtp: SmtpSink | None = None) -> web.Application:
    """A root app with each simulator mounted under its prefix, plus ``/healthz``,
    ``/demo/integrations`` (the demo partner's integrations, for the dev stack) and,
    with ``smtp``, the sink's ``/smtp/`` pages."""
    root = web.Application()

    async def healthz(request: web.Request) -> web.StreamResponse:
        origin = f"{request.scheme}://{request.host}"
        return json_response({"ok": True, "base_urls": base_urls(origin, sims)})

    async def integrations(request: web.Request) -> web.StreamResponse:
        origin = f"{request.scheme}://{request.host}"
        return json_response(demo_integrations(origin, sims, smtp))

    root.router.add_get("/healthz", healthz)
    root.router.add_get("/demo/integrations", integrations)
    if smtp is not None:
        smtp.add_routes(root.router)
    for name, sim in sims.items():
        root.add_subapp(MOUNTS[name], sim.app)
    return root


@dataclass
class ServedSimulators:
    """A running server: its port, its URLs, and the simulators (and the SMTP sink, when
    it runs) for direct access."""

    sims: Mapping[str, VendorSim]
    host: str
    port: int
    runner: web.AppRunner = field(repr=False)
    smtp: SmtpSink | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        return base_urls(self.origin, self.sims)

    def ready_line(self) -> dict[str, Any]:
        """What the CLI prints when it is ready (one JSON object; ``smtp``: the sink's port)."""
        line: dict[str, Any] = {
            "ready": True,
            "host": self.host,
            "port": self.port,
            "base_urls": self.urls,
            "admin": {name: self.origin + MOUNTS[name] + "/_sim" for name in self.sims},
        }
        if self.smtp is not None:
            line["smtp"] = self.smtp.port
            line["admin"]["smtp"] = self.origin + "/smtp/"
        return line

    async def close(self) -> None:
        try:
            await self.runner.cleanup()
        finally:
            if self.smtp is not None:
                await self.smtp.close()


async def serve_all(
    sims: Mapping[str, VendorSim],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    smtp_port: int | None = None,
) -> ServedSimulators:
    """Serve ``sims`` on ``host:port`` (0: any free port), and the SMTP sink on
    ``host:smtp_port`` unless it is None; ``close()`` it when done."""
    smtp = None
    if smtp_port is not None:
        smtp = SmtpSink()
        await smtp.start(host, smtp_port)
    runner = web.AppRunner(build_root(sims, smtp), access_log=None, shutdown_timeout=5.0)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()  # safe before setup() too
        if smtp is not None:
            await smtp.close()
        raise
    bound = runner.addresses[0][1]
    return ServedSimulators(sims, host, int(bound), runner, smtp)
