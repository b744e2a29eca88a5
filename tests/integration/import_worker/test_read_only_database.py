"""A PostgreSQL that turns read-only is an outage, not bad input (docs/contract.md §3).

``ALTER SYSTEM SET default_transaction_read_only = on`` + ``pg_reload_conf()`` is what a
failover behind a pooler or VIP, or a managed instance whose disk filled, looks like
to a client: every write fails with SQLSTATE 25006. While it lasts the worker must
dead-letter nothing and skip no projection event, the API must answer 503; once it
is over, every discovery is decided and every change projected.

Before the fix class 25 was not an outage: the hot path bisected every batch and
dead-lettered every record as a processing failure, and the projection skipped
("refused") every policy and customer change meanwhile.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from schemas.enums import AccountType
from services.infra.devstack import LocalPostgres
from services.infra.migrations import migrate
from tests.integration.policy_service.support import MIGRATIONS as POLICY_MIGRATIONS
from tests.integration.policy_service.support import Api, Tenant, settings_for
from tests.served_app import ServedApp

from .events import account, customer, discovered, end_user_options, policy
from .support import Harness
from .worker import wait_until

WORKER_MIGRATIONS = "services.import_worker.adapters.migrations"
DISCOVERIES = 40


@pytest.fixture
def own_postgres(pg_tmp_path: Path) -> Iterator[LocalPostgres]:
    """A cluster of this test's own: ALTER SYSTEM changes the whole cluster."""
    with LocalPostgres(pg_tmp_path / "data", throwaway=True) as server:
        yield server


@pytest.fixture
async def dsn(own_postgres: LocalPostgres) -> str:
    url = own_postgres.create_database("readonly")
    await migrate(url, "import_worker", WORKER_MIGRATIONS)
    await migrate(url, "policy_service", POLICY_MIGRATIONS)
    return url


@pytest.fixture
async def admin(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()


async def _read_only(conn: asyncpg.Connection, on: bool) -> None:
    if on:
        await conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        await conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
    await conn.execute("SELECT pg_reload_conf()")


async def test_a_read_only_database_is_waited_out(
    start_worker: Callable[..., Awaitable[Harness]],
    dsn: str,
    admin: asyncpg.Connection,
    kafka_bootstrap: str,
) -> None:
    h = await start_worker(extra_env={"DATABASE_URL": dsn, "FAILURE_BACKOFF_MAX_SECONDS": "1"})
    from services.policy_service.bootstrap import build_app

    settings = settings_for(dsn, kafka_bootstrap)
    served = ServedApp(lambda: build_app(settings, h.topics)).start()
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        tenant = Tenant(Api(h.http, served.base_url))
        partner = tenant.partner_id
        state = policy(partner, AccountType.END_USER, end_user_options())
        known = customer(partner, end_user=state.id)
        await h.project(pool, state, known)

        await _read_only(admin, True)

        async def refused() -> bool:
            reply = await tenant.call("POST", "/v1/customers", json_body={"name": "Fabrikam"})
            return reply.status == 503 and reply.headers.get("Retry-After") is not None

        await wait_until(refused, "the API's 503 while the database is read-only")
        late = customer(partner, end_user=state.id)  # a change to project meanwhile
        await h.bus.customer(late)
        events = [discovered(partner, account(known.id)) for _ in range(DISCOVERIES)]
        events += [discovered(partner, account(late.id)) for _ in range(DISCOVERIES)]
        await asyncio.gather(*(h.bus.discovered(e) for e in events))

        async def failing() -> bool:
            return (
                await h.worker.metric(
                    h.http, 'import_batch_failures_total{error="ReadOnlySQLTransactionError"}'
                )
                > 0
            )

        await wait_until(failing, "the hot path meeting the read-only database")
        await asyncio.sleep(3)  # several rounds of retries, all refused
        await h.reader.drain()
        decided_meanwhile = [r for r in h.reader.records if r.topic == h.topics.import_decisions]
        assert decided_meanwhile == [], "nothing can be imported while writes are refused"

        await _read_only(admin, False)

        decisions = h.topics.import_decisions
        await h.reader.wait_for(
            lambda records: sum(r.topic == decisions for r in records) >= len(events),
            "every discovery decided once the database is writable again",
            timeout=60,
        )
        await h.reader.drain()
        outcomes = {r.envelope["data"]["outcome"] for r in h.reader.records if r.topic == decisions}
        assert outcomes == {"imported"}
        dead = [r for r in h.reader.records if r.topic == h.topics.account_discovered_dlq]
        assert dead == [], [r.header("x-error-detail") for r in dead]
        for result in ("refused", "unreadable"):
            sample = f'import_projection_events_total{{entity="customer",result="{result}"}}'
            assert await h.worker.metric(h.http, sample) == 0
        assert (
            await pool.fetchval(
                "SELECT version FROM import_worker.customers WHERE id = $1", late.id
            )
            == 1
        )

        created = await tenant.call("POST", "/v1/customers", json_body={"name": "Fabrikam"})
        assert created.status == 201, created.body
        await pool.close()
    finally:
        served.stop()
