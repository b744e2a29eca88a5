"""Relay leadership moves when the leader's connection dies (adapters/relay.py).

Two relays share one database; the one holding the advisory lock publishes. Its
PostgreSQL session is killed with ``pg_terminate_backend`` while changes keep
coming: the standby must take over within 15 s, and every outbox row must reach
the topic, each key's versions first seen in order (the batch the old leader had
already handed to the broker may arrive twice: same ids, same versions).
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from schemas.topics import TopicNames
from services.infra.devstack.databases import create_database, drop_database
from services.infra.migrations import migrate
from services.policy_service.adapters.relay import OutboxRelay, RelayConfig, RelayMetrics
from services.policy_service.bootstrap import build_app
from tests.served_app import ServedApp

from .support import MIGRATIONS, SCHEMA, Api, Tenant, collect_events, settings_for, versions_by_key

POLICIES = 6
CHANGES = 40
APP = "failover-test-relay"


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own: advisory locks are per database, the session holds its own."""
    name = f"failover_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(database_url, name)
    await migrate(dsn, SCHEMA, MIGRATIONS)
    yield dsn
    await drop_database(database_url, name)


async def _leader(conn: asyncpg.Connection) -> int | None:
    pid: int | None = await conn.fetchval(
        """SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
             AND a.application_name = $1""",
        APP,
    )
    return pid


async def test_a_standby_takes_over_when_the_leaders_session_is_killed(
    own_database: str, kafka_bootstrap: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(
        policy_events=f"policy.events.failover.{suffix}",
        customer_events=f"customer.events.failover.{suffix}",
    )
    settings = settings_for(own_database, kafka_bootstrap, relay_enabled=False)
    served = await asyncio.to_thread(ServedApp(lambda: build_app(settings, topics)).start)
    config = RelayConfig(
        dsn=f"{own_database}{'&' if '?' in own_database else '?'}application_name={APP}",
        bootstrap_servers=kafka_bootstrap,
        poll_interval=0.05,
        batch_size=20,
        topics=(topics.policy_events, topics.customer_events),
        partitions=4,
    )
    relays = [OutboxRelay(config, RelayMetrics(CollectorRegistry())) for _ in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    admin = await asyncpg.connect(own_database)
    try:
        async with aiohttp.ClientSession() as session:
            tenant = Tenant(Api(session, served.base_url))
            policies = [(await tenant.create_policy())["id"] for _ in range(POLICIES)]

            async def change(policy_id: str) -> None:
                for i in range(CHANGES):
                    await tenant.ok(
                        "PATCH",
                        f"/v1/import-policies/{policy_id}",
                        json_body={"description": f"change {i}"},
                    )
                    await asyncio.sleep(0.02)

            writers = asyncio.gather(*(change(p) for p in policies))
            first = await _wait_for(lambda: _leader(admin), "a leader")
            await asyncio.sleep(0.5)  # let it publish for a while
            killed_at = time.monotonic()
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)

            async def other_leader() -> int | None:
                pid = await _leader(admin)
                return pid if pid not in (None, first) else None

            second = await _wait_for(other_leader, "the standby to take over", timeout=15)
            took_over = time.monotonic() - killed_at
            await writers
            assert second != first
            assert took_over < 15, took_over

            async def drained() -> bool:
                left = await admin.fetchval(
                    "SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL"
                )
                return left == 0

            await _wait_for(drained, "every outbox row published", timeout=60)
            expected = CHANGES + 1  # created at version 1, then one version per change
            events = await collect_events(
                kafka_bootstrap,
                topics.policy_events,
                set(policies),
                lambda got: (
                    all(len(vs) >= expected for vs in versions_by_key(got).values())
                    and len(versions_by_key(got)) == POLICIES
                ),
                timeout=60,
            )
            for key, versions in versions_by_key(events).items():
                assert versions == list(range(1, expected + 1)), (key, versions)
            leaders = [r.metrics.leader._value.get() for r in relays]
            assert sorted(leaders) == [0.0, 1.0], leaders
            print(f"standby took over {took_over:.2f} s after the leader's session was killed")
    finally:
        for relay in relays:
            relay.stop()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        await admin.close()
        await asyncio.to_thread(served.stop)


async def _wait_for(check, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
