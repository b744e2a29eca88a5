"""What every vendor connector is built from: the integration's configuration (its
credentials opened) and the shared machinery (HTTP session, pacer, retry policy)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.handlers.adapters.http import Pacer, RetryPolicy, Slots, VendorMetrics


@dataclass(frozen=True)
class IntegrationConfig:
    """One partner's integration, as the handlers use it (credentials in memory only)."""

    partner_id: str
    provider: str
    base_url: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str] = field(repr=False)
    version: int = 1


@dataclass(frozen=True)
class ConnectContext:
    session: aiohttp.ClientSession
    pacer: Pacer
    policy: RetryPolicy
    metrics: VendorMetrics | None = None
    slots: Slots | None = None
