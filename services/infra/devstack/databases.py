"""Create and drop databases on a PostgreSQL server given only a DSN.

Used by the test fixtures to give each session a database of its own, both
on the throwaway local server and on an external one (``TEST_DATABASE_URL``),
and by the dev stack to create its database on first start.
"""

from urllib.parse import urlsplit, urlunsplit

import asyncpg


def quote_ident(name: str) -> str:
    """SQL identifier quoting; database names cannot be bind parameters."""
    return '"' + name.replace('"', '""') + '"'


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at ``database`` instead, host, credentials and query kept."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(dsn: str, name: str, *, exist_ok: bool = False) -> str:
    """Create database ``name`` on the server of ``dsn``; return the DSN of the new database."""
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not (exists and exist_ok):
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    return with_database(dsn, name)


async def drop_database(dsn: str, name: str) -> None:
    """Drop database ``name``, disconnecting its sessions first (PostgreSQL 13+)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
