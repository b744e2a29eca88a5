"""Vendor limits, shared by every handler process through PostgreSQL.

A rolling-window log per integration (``handlers.pacing_slots``): a request
may go when the window ending now holds fewer than ``limit`` requests; it then
writes its slot. This keeps every window of the vendor's documented length at
or under the documented limit, which a token bucket holding the whole limit
would not (it allows twice that across one window). The window is counted a
little longer than the vendor's (``margin``), so that a request our clock
placed just outside a window does not arrive, after network delays, inside the
vendor's. A 429's ``Retry-After`` pauses the integration for everyone
(``handlers.pacing_pauses``).

Autotask's "3 threads" limit is a concurrency limit: :class:`ConcurrencySlots`
holds one of N session advisory locks for the duration of a request (on a
connection of its own, so a crashed process frees its slot).

One transaction per request, serialised per integration by an advisory
transaction lock: a few hundred requests per second per integration at most,
which is far above any of the vendors' limits.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import asyncpg

_ACQUIRE = """
WITH paused AS (
    SELECT extract(epoch FROM until - clock_timestamp()) AS wait
    FROM handlers.pacing_pauses WHERE integration = $1 AND until > clock_timestamp()
), pruned AS (
    DELETE FROM handlers.pacing_slots
    WHERE integration = $1 AND at < clock_timestamp() - make_interval(secs => $2::float8 * 2)
), used AS (
    SELECT count(*) AS n, min(at) AS oldest FROM handlers.pacing_slots
    WHERE integration = $1 AND at > clock_timestamp() - make_interval(secs => $2::float8)
)
SELECT (SELECT wait FROM paused) AS paused,
       used.n,
       extract(epoch FROM used.oldest + make_interval(secs => $2::float8)
                          - clock_timestamp()) AS free_in
FROM used
"""


class PgPacer:
    """The pacer of one integration (``key``): at most ``limit`` per ``window`` seconds."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        key: str,
        limit: int,
        window: float,
        *,
        margin: float | None = None,
    ) -> None:
        self.pool = pool
        self.key = key
        self.limit = limit
        self.window = window
        self.counted = window + (margin if margin is not None else max(0.2, window * 0.01))
        self._random = random.Random()
        # One waiter per process asks the database; the others queue here. Without it a
        # throttled integration's hundreds of waiting commands would each poll
        # PostgreSQL, and crowd out the pool every other partner's commands use.
        self._turn = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._turn:
            while True:
                wait = await self._try()
                if wait <= 0:
                    return
                # A little jitter, so that waiting processes do not all ask at once.
                await asyncio.sleep(wait + self._random.uniform(0, min(0.05, wait / 10)))

    async def _try(self) -> float:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", self.key)
            row = await conn.fetchrow(_ACQUIRE, self.key, self.counted)
            if row["paused"] is not None and row["paused"] > 0:
                return float(row["paused"])
            if row["n"] >= self.limit:
                return max(0.01, float(row["free_in"] or 0.01))
            await conn.execute(
                "INSERT INTO handlers.pacing_slots (integration, at)"
                " VALUES ($1, clock_timestamp())",
                self.key,
            )
            return 0.0

    async def pause(self, seconds: float) -> None:
        await self.pool.execute(
            """INSERT INTO handlers.pacing_pauses (integration, until)
               VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8))
               ON CONFLICT (integration) DO UPDATE SET until = GREATEST(
                   handlers.pacing_pauses.until, EXCLUDED.until)""",
            self.key,
            float(seconds),
        )


class ConcurrencySlots:
    """At most ``slots`` requests of one integration in flight, across processes."""

    def __init__(self, pool: asyncpg.Pool, key: str, slots: int) -> None:
        self.pool = pool
        self.key = key
        self.slots = slots
        self._random = random.Random()
        self._local = asyncio.Semaphore(slots)  # no more local contenders than slots

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._local, self.pool.acquire() as conn:
            slot = await self._take(conn)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1), $2)", self.key, slot)

    async def _take(self, conn: asyncpg.Connection) -> int:
        while True:
            for slot in range(self.slots):
                if await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1), $2)", self.key, slot
                ):
                    return slot
            await asyncio.sleep(0.02 + self._random.uniform(0, 0.03))
