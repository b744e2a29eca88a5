"""The unit of work gives its connection back however it ends (found by ``make chaos``,
scenario 3: PostgreSQL restarts).

``async with`` calls no ``__aexit__`` when ``__aenter__`` raises, so a unit of
work that failed while starting (PostgreSQL going away, a lock timeout) kept its
pooled connection for ever: enough such failures and every later request would
wait on an empty pool.
"""

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from schemas.topics import TopicNames
from services.policy_service.domain.auth import Principal
from services.policy_service.service_layer.unit_of_work import UnitOfWork

pytestmark = pytest.mark.timeout(60)


async def test_a_unit_of_work_that_fails_to_start_releases_its_connection(
    policy_database: str, db: asyncpg.Pool
) -> None:
    principal = Principal(sub="u", partner_id=f"p{uuid.uuid4().hex[:12]}", role="manager")
    # One connection only, and locks that give up at once: a held partner lock makes
    # __aenter__ fail in begin_locked, after it has taken the pool's only connection.
    pool = await asyncpg.create_pool(
        policy_database, min_size=1, max_size=1, server_settings={"lock_timeout": "50ms"}
    )
    try:
        async with db.acquire() as holder, holder.transaction():
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 42))",
                f"partner:{principal.partner_id}",
            )
            for _ in range(3):
                with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                    async with UnitOfWork(pool, TopicNames(), principal):
                        pass

        async def starts() -> None:
            async with UnitOfWork(pool, TopicNames(), principal) as uow:
                assert uow.repo.conn.is_in_transaction()  # begun, holding the lock

        await asyncio.wait_for(starts(), timeout=5)  # hangs for ever if a connection leaked
        assert pool.get_idle_size() == pool.get_size() == 1
    finally:
        await pool.close()


async def test_a_commit_of_a_failed_transaction_raises_and_keeps_nothing(db: asyncpg.Pool) -> None:
    """PostgreSQL answers COMMIT on a failed transaction with a rollback, not an error."""
    principal = Principal(sub="u", partner_id=f"p{uuid.uuid4().hex[:12]}", role="manager")
    key = f"k-{uuid.uuid4()}"

    async def write_then_fail_then_commit() -> None:
        async with UnitOfWork(db, TopicNames(), principal) as uow:
            await uow.repo.record_changes(
                [(principal.partner_id, "u", "updated", "policy", uuid.uuid4(), 1)],
                [("policy.events", key, b"{}", {})],
            )
            with contextlib.suppress(asyncpg.exceptions.DivisionByZeroError):
                await uow.repo.conn.execute("SELECT 1 / 0")
            await uow.repo.commit()

    with pytest.raises(asyncpg.exceptions.InFailedSQLTransactionError):
        await write_then_fail_then_commit()
    assert await db.fetchval("SELECT count(*) FROM policy_service.outbox WHERE key = $1", key) == 0
    audited = await db.fetchval(
        "SELECT count(*) FROM policy_service.audit_log WHERE partner_id = $1",
        principal.partner_id,
    )
    assert audited == 0
