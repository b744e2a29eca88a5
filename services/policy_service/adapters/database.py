"""The PostgreSQL connection pool, opened and closed by the application's lifecycle."""

import asyncpg


async def _end_transaction(conn: asyncpg.Connection) -> None:
    """What a connection needs before its next request: no transaction left open.

    asyncpg's default reset also runs ``RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()``: a round trip on every release, for session state
    this service never sets (its advisory locks are transaction-level; the relay's
    leadership lock lives on a connection of its own, not the pool's).
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    """Holds the pool; handlers built before startup read it once it is open."""

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 32) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            command_timeout=30,
            reset=_end_transaction,
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is not open")
        return self._pool

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1", timeout=2) == 1)
        except Exception:
            return False
