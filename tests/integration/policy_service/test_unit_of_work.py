"""The unit of work gives its connection back however it ends (found by ``make chaos``,
scenario 3: PostgreSQL restarts).

``async with`` calls no ``__aexit__`` when ``__aenter__`` raises, so a unit of
work that failed while starting (PostgreSQL going away, a lock timeout) kept its
pooled connection for ever: enough such failures and every later request would
wait on an empty pool.
"""

import asyncio
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
    # __aenter__ fail in lock_partner, after it has taken the pool's only connection.
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
                await uow.repo.lock_partner(principal.partner_id)

        await asyncio.wait_for(starts(), timeout=5)  # hangs for ever if a connection leaked
        assert pool.get_idle_size() == pool.get_size() == 1
    finally:
        await pool.close()
