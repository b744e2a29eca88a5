"""The unit of work gives its connection back however it ends (found by ``make chaos``,
scenario 3: PostgreSQL restarts), and commits what it publishes.

``async with`` calls no ``__aexit__`` when ``__aenter__`` raises, so a unit of
work that failed while starting (PostgreSQL going away, a lock timeout) kept its
pooled connection for ever: enough such failures and every later request would
wait on an empty pool.
"""

import asyncio
import contextlib
import json
import uuid
from typing import Any

import asyncpg
import pytest

from schemas.enums import AccountType
from schemas.options import EndUserOptions
from schemas.topics import TopicNames
from services.policy_service.adapters.repository import ConcurrentChange, Repository
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


async def _new_policy(db: asyncpg.Pool, principal: Principal) -> uuid.UUID:
    policy_id = uuid.uuid4()
    async with UnitOfWork(db, TopicNames(), principal) as uow:
        await uow.repo.insert_policy(
            policy_id=policy_id,
            partner_id=principal.partner_id,
            account_type=AccountType.END_USER,
            name="Standard",
            description="",
            options=EndUserOptions(),
            actor=principal.sub,
        )
        uow.policy_created(policy_id)
        await uow.commit()
    return policy_id


async def _published(db: asyncpg.Pool, policy_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT value FROM policy_service.outbox WHERE key = $1 ORDER BY id", str(policy_id)
    )
    return [json.loads(r["value"])["data"] for r in rows]


@pytest.mark.parametrize("alone", [True, False], ids=["fields-alone", "with-another-change"])
async def test_a_change_of_fields_commits_the_state_it_publishes(
    db: asyncpg.Pool, alone: bool
) -> None:
    """Alone, the fields are written in the statement that records the change (the
    state built in Python, not read back); with another change of the policy, first."""
    principal = Principal(sub="u", partner_id=f"p{uuid.uuid4().hex[:12]}", role="manager")
    policy_id = await _new_policy(db, principal)
    options = EndUserOptions(send_welcome_email=True)
    async with UnitOfWork(db, TopicNames(), principal) as uow:
        current, uow.transaction_time = await uow.repo.policy_and_now(
            principal.partner_id, policy_id
        )
        assert current is not None
        uow.policy_fields_changed(current, name="Renamed", description="d", options=options)
        if not alone:
            changed = await uow.repo.set_default(
                principal.partner_id, current.account_type, policy_id
            )
            uow.policies_changed(changed)
        await uow.commit()
    committed = uow.committed_policies[policy_id]
    async with db.acquire() as conn:
        stored = await Repository(conn).policy(principal.partner_id, policy_id)
    assert committed == stored
    assert stored is not None
    assert (stored.name, stored.description, stored.options) == ("Renamed", "d", options)
    assert (stored.version, stored.is_default) == (2, not alone)
    assert stored.updated_at == uow.transaction_time  # PostgreSQL's clock, not ours
    assert (await _published(db, policy_id))[-1] == stored.model_dump(mode="json")


@pytest.mark.parametrize("alone", [True, False], ids=["fields-alone", "with-another-change"])
async def test_a_change_of_fields_from_a_stale_version_keeps_nothing(
    db: asyncpg.Pool, alone: bool
) -> None:
    """The UPDATE names the version it changes: a write that moved it meanwhile (none
    can, under the partner lock; this one bypasses it) fails the whole unit of work."""
    principal = Principal(sub="u", partner_id=f"p{uuid.uuid4().hex[:12]}", role="manager")
    policy_id = await _new_policy(db, principal)

    async def change_from_a_stale_version() -> None:
        async with UnitOfWork(db, TopicNames(), principal) as uow:
            current, uow.transaction_time = await uow.repo.policy_and_now(
                principal.partner_id, policy_id
            )
            assert current is not None
            await db.execute(
                "UPDATE policy_service.policies SET version = version + 1 WHERE id = $1",
                policy_id,
            )
            uow.policy_fields_changed(current, name="Lost", description="", options=current.options)
            if not alone:
                uow.policies_changed([policy_id])
            await uow.commit()

    with pytest.raises(ConcurrentChange):
        await change_from_a_stale_version()
    assert (
        await db.fetchval("SELECT name FROM policy_service.policies WHERE id = $1", policy_id)
        == "Standard"
    )
    assert len(await _published(db, policy_id)) == 1  # its creation only


async def test_a_change_of_fields_after_another_change_of_the_policy_is_read_back(
    db: asyncpg.Pool,
) -> None:
    """``current`` predates a change made first in the same unit of work: the state
    published must be read, with both changes, not built from ``current``."""
    principal = Principal(sub="u", partner_id=f"p{uuid.uuid4().hex[:12]}", role="manager")
    policy_id = await _new_policy(db, principal)
    async with UnitOfWork(db, TopicNames(), principal) as uow:
        current, uow.transaction_time = await uow.repo.policy_and_now(
            principal.partner_id, policy_id
        )
        assert current is not None
        uow.policies_changed(
            await uow.repo.set_default(principal.partner_id, current.account_type, policy_id)
        )
        uow.policy_fields_changed(current, name="Renamed", description="", options=current.options)
        await uow.commit()
    async with db.acquire() as conn:
        stored = await Repository(conn).policy(principal.partner_id, policy_id)
    assert stored is not None
    assert (stored.name, stored.is_default, stored.version) == ("Renamed", True, 2)
    assert uow.committed_policies[policy_id] == stored
    assert (await _published(db, policy_id))[-1] == stored.model_dump(mode="json")
