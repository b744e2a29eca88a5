"""9. Read-only PostgreSQL under load: the same load as scenario 3 (discoveries, API
writes and their events), but the database does not go away: it turns read-only
(``ALTER SYSTEM SET default_transaction_read_only = on`` + ``pg_reload_conf()``), as a
failover behind a pooler or a managed instance whose disk filled looks to a client,
twice, for a few seconds each time.

Proves: a read-only database is an outage, not bad input (SQLSTATE class 25): nothing
is dead-lettered, no projection event is skipped, the API answers 503 with
``Retry-After`` meanwhile, and once writes are allowed again every discovery is
decided and every acknowledged change published, with no restart.
"""

import asyncio
import time

import asyncpg

from chaos.lab import Lab
from chaos.report import Result
from chaos.s3_postgres_restart import SIZES, under_load
from services.infra.devstack import LocalPostgres

TITLE = "9 read-only PostgreSQL under load"


async def _read_only(pg: LocalPostgres, how: str, seconds: float) -> float:
    """Writes refused for ``seconds``: the whole server turns read-only, then back."""
    began = time.monotonic()
    conn = await asyncpg.connect(pg.dsn())
    try:
        await conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        await conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(seconds)
        await conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    return time.monotonic() - began


async def run(lab: Lab, size: str, seed: int = 9) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.events} events at {s.rate}/s + API writes; read-only twice")
    return await under_load(lab, "s9", s, seed, result, _read_only, ("read-only", "read-only"))
