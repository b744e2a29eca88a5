"""The start-up gate (docs/contract.md §3), for real: a worker started on an empty
database while the compacted topics already hold 2,000 customers and a backlog of their
discoveries decides none of them before its projection has caught up.

Without the gate the hot path (whose group joins first) takes those discoveries for
accounts of unknown customers: with no retries configured, each one is dead-lettered
as ``unknown_customer`` at once.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from schemas.enums import AccountType
from services.infra.devstack import LocalPostgres
from services.infra.migrations import migrate

from .events import account, customer, discovered, end_user_options, policy
from .support import Harness

CUSTOMERS = 2000
MIGRATIONS = "services.import_worker.adapters.migrations"


@pytest.fixture
async def empty_database(postgres: LocalPostgres) -> str:
    dsn = postgres.create_database(f"gate_{uuid.uuid4().hex[:10]}")
    await migrate(dsn, "import_worker", MIGRATIONS)
    return dsn


async def test_nothing_is_decided_before_the_projection_caught_up(
    start_worker: Callable[..., Awaitable[Harness]], empty_database: str
) -> None:
    h = await start_worker(
        run=False,
        retry_delays="[]",  # an unknown customer goes to the DLQ at once
        extra_env={"DATABASE_URL": empty_database},
    )
    partner = f"gate-{uuid.uuid4().hex[:8]}"
    state = policy(partner, AccountType.END_USER, end_user_options())
    customers = [customer(partner, end_user=state.id) for _ in range(CUSTOMERS)]
    await h.bus.policy(state)
    await asyncio.gather(*(h.bus.customer(c) for c in customers))
    await asyncio.gather(*(h.bus.discovered(discovered(partner, account(c.id))) for c in customers))

    h.worker.start()
    await h.worker.wait_ready(h.http, timeout=120)
    status, body = await h.worker.get(h.http, "/readyz")
    assert status == 200, body

    decisions = h.topics.import_decisions
    await h.reader.wait_for(
        lambda records: sum(r.topic == decisions for r in records) >= CUSTOMERS,
        f"{CUSTOMERS} decisions",
        timeout=120,
    )
    await h.reader.drain()
    dead = [r for r in h.reader.records if r.topic == h.topics.account_discovered_dlq]
    assert dead == [], {r.header("x-error-reason") for r in dead}
    outcomes = [r.envelope["data"]["outcome"] for r in h.reader.records if r.topic == decisions]
    assert outcomes == ["imported"] * CUSTOMERS
    assert await h.worker.metric(h.http, 'import_events_total{outcome="retried"}') == 0
