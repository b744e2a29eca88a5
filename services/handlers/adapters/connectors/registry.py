"""From an integration's configuration to a ready connector, one per integration version.

A connector is kept while its integration's version stands (a Halo token it
holds stays cached); a new version (new credentials, a new URL) builds a new
one. Each gets the integration's pacer (its documented limit, shared through
PostgreSQL by every handler process) and, for Autotask, its concurrency slots.
Microsoft Graph publishes no fixed limit (it throttles with ``429`` and
``Retry-After``, which the HTTP client honours), so its connector is unpaced.
"""

import importlib
from collections.abc import Mapping
from typing import Any, cast

import aiohttp
import asyncpg

from schemas.integrations import Provider, integration_key
from schemas.providers import SPECS
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import Pacer, RetryPolicy, Unpaced, VendorMetrics
from services.handlers.adapters.pacing import ConcurrencySlots, PgPacer
from services.handlers.service_layer.ports import (
    DocumentationConnector,
    IdentityConnector,
    PsaConnector,
)

Connector = PsaConnector | DocumentationConnector | IdentityConnector

# provider -> (module, the setting with its limit, the window in seconds)
_VENDORS: dict[str, tuple[str, str, float]] = {
    "connectwise": ("connectwise", "requests_per_minute", 60.0),
    "autotask": ("autotask", "requests_per_hour", 3600.0),
    "halo": ("halo", "requests_per_5_minutes", 300.0),
    "itglue": ("itglue", "requests_per_5_minutes", 300.0),
    "hudu": ("hudu", "requests_per_minute", 60.0),
}
#: provider -> module, for the vendors without a documented request limit
_UNPACED: dict[str, str] = {"m365": "graph"}


def pace_of(provider: str, settings: Mapping[str, Any]) -> tuple[int, float]:
    """(requests, per seconds): the provider's documented limit, or the partner's setting."""
    _, name, window = _VENDORS[provider]
    model = SPECS[Provider(provider)].settings.model_validate(dict(settings))
    return int(getattr(model, name)), window


class Connectors:
    """Builds and keeps the connectors of every partner's integrations."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        pool: asyncpg.Pool,
        policy: RetryPolicy,
        metrics: VendorMetrics | None = None,
        *,
        paced: bool = True,
        window_scale: float = 1.0,
    ) -> None:
        self.session = session
        self.pool = pool
        self.policy = policy
        self.metrics = metrics
        self.paced = paced
        self.window_scale = window_scale
        self._built: dict[tuple[str, str], tuple[int, Connector]] = {}

    def supports(self, provider: str) -> bool:
        return provider in _VENDORS or provider in _UNPACED

    def get(self, config: IntegrationConfig) -> Connector:
        known = self._built.get((config.partner_id, config.provider))
        if known is not None and known[0] == config.version:
            return known[1]
        connector = self._build(config)
        self._built[(config.partner_id, config.provider)] = (config.version, connector)
        return connector

    def _build(self, config: IntegrationConfig) -> Connector:
        key = integration_key(config.partner_id, config.provider)
        pacer: Pacer = Unpaced()
        module_name = _UNPACED.get(config.provider)
        if module_name is None:
            module_name = _VENDORS[config.provider][0]
        if self.paced and config.provider in _VENDORS:
            limit, window = pace_of(config.provider, config.settings)
            pacer = PgPacer(self.pool, key, limit, window * self.window_scale)
        slots = None
        if config.provider == "autotask":
            concurrency = int(config.settings.get("max_concurrency", 3))
            slots = ConcurrencySlots(self.pool, key, concurrency)
        context = ConnectContext(self.session, pacer, self.policy, self.metrics, slots)
        module = importlib.import_module(f"services.handlers.adapters.connectors.{module_name}")
        return cast(Connector, module.connect(config, context))
