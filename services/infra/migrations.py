"""A small, ordered SQL migration runner for asyncpg.

Each service keeps numbered ``NNNN_name.sql`` files in its own package and its
own PostgreSQL schema. Applied versions are recorded in
``<schema>.schema_migrations``; an advisory lock makes concurrent runners
(two replicas, or a Job and a pod) apply each file exactly once. Every file
runs in its own transaction together with its bookkeeping row.
"""

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """The ``NNNN_*.sql`` files shipped in ``package``, in version order."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {package}: {versions}")
    return found


async def migrate(dsn: str, schema: str, package: str) -> list[str]:
    """Apply the pending migrations of ``package`` to ``schema``; return their names."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"bad schema name {schema!r}")
    migrations = load_migrations(package)
    applied_now: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", f"migrate:{schema}")
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["version"]
                for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
            }
            for migration in migrations:
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                    await conn.execute(migration.sql)
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                log.info("applied migration", extra={"schema": schema, "migration": migration.name})
                applied_now.append(migration.name)
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))", f"migrate:{schema}"
            )
    finally:
        await conn.close()
    return applied_now
