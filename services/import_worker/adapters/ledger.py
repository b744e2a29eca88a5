"""The import ledger in PostgreSQL: which accounts were imported, by which decision."""

import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg

from services.import_worker.service_layer.ports import LedgerRow

_CLAIM = """
INSERT INTO import_worker.ledger
    (account_key, partner_id, customer_id, policy_id, policy_version, decision_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::uuid[])
ON CONFLICT (account_key) DO NOTHING
RETURNING account_key
"""


class PgLedgerTransaction:
    def __init__(self, conn: asyncpg.Connection, tx: asyncpg.transaction.Transaction) -> None:
        self._conn = conn
        self._tx = tx
        self.committed = False

    async def claim(self, rows: Sequence[LedgerRow]) -> set[str]:
        """One statement for the batch: new keys are inserted and returned.

        A key another worker inserted but has not committed yet makes this
        statement wait for that transaction: no account is claimed twice.
        """
        if not rows:
            return set()
        found = await self._conn.fetch(
            _CLAIM,
            [r.account_key for r in rows],
            [r.partner_id for r in rows],
            [r.customer_id for r in rows],
            [r.policy_id for r in rows],
            [r.policy_version for r in rows],
            [r.decision_id for r in rows],
        )
        return {r["account_key"] for r in found}

    async def imported(self, keys: Sequence[str]) -> set[str]:
        rows = await self._conn.fetch(
            "SELECT account_key FROM import_worker.ledger WHERE account_key = ANY($1::text[])",
            list(keys),
        )
        return {r["account_key"] for r in rows}

    async def commit(self) -> None:
        await self._tx.commit()
        self.committed = True


class PgLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgLedgerTransaction]:
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            handle = PgLedgerTransaction(conn, tx)
            try:
                yield handle
            finally:
                if not handle.committed:
                    with contextlib.suppress(Exception):
                        await tx.rollback()
