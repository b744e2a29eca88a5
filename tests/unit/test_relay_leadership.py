"""The relay's leadership connection notices a dead peer in seconds (adapters/relay.py):
server-side TCP keepalives end a vanished leader's session (and so free the lock), and a
statement timeout stops a leader whose server went silent."""

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.policy_service.adapters import relay as relay_module
from services.policy_service.adapters.relay import (
    OutboxRelay,
    RelayConfig,
    RelayMetrics,
    leadership_settings,
)

pytestmark = pytest.mark.unit


def test_keepalives_give_up_on_a_dead_client_within_seconds() -> None:
    settings = leadership_settings(5)
    idle, interval, count = (
        int(settings["tcp_keepalives_idle"]),
        int(settings["tcp_keepalives_interval"]),
        int(settings["tcp_keepalives_count"]),
    )
    assert idle + interval * count <= 15  # the lock is free well before a standby's 15 s
    assert int(settings["tcp_user_timeout"]) <= 15_000
    assert "application_name" not in settings  # the DSN's own, if it names one


async def test_the_lock_connection_asks_for_keepalives_and_a_statement_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    async def connect(dsn: str, **kwargs: Any) -> object:
        seen.update(kwargs, dsn=dsn)
        return object()

    monkeypatch.setattr(relay_module.asyncpg, "connect", connect)
    config = RelayConfig(dsn="postgresql://x/y", bootstrap_servers="b", statement_timeout=3)
    relay = OutboxRelay(config, RelayMetrics(CollectorRegistry()))
    await relay._connect()
    assert seen["command_timeout"] == 3
    assert seen["timeout"] == 3
    assert seen["server_settings"] == leadership_settings(config.keepalive_seconds)
