"""The bare ceiling of the policy service's benchmark: aiohttp + asyncpg, nothing else.

    python bench/bare_server.py <port> <dsn>

``GET /read/{id}`` reads one row by primary key and answers it as JSON;
``PATCH /write/{id}`` runs one transaction: a one-row UPDATE and an outbox
INSERT. Same PostgreSQL, same pool (size and reset), same event loop (uvloop) as the
service, so
the ratio to it is what the service's own layers (auth, validation, rules,
logs, metrics) cost.
"""

import asyncio
import json
import sys
import uuid

import asyncpg
import uvloop
from aiohttp import web

SETUP = """
CREATE SCHEMA IF NOT EXISTS bare;
CREATE TABLE IF NOT EXISTS bare.items (id uuid PRIMARY KEY, body jsonb NOT NULL,
                                       version integer NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS bare.outbox (seq bigserial PRIMARY KEY, item uuid NOT NULL,
                                        payload jsonb NOT NULL);
"""


async def setup(dsn: str, ids: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
        await conn.executemany(
            "INSERT INTO bare.items (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(i, json.dumps({"name": f"item {n}", "options": {"a": True}})) for n, i in
             enumerate(ids)],
        )  # fmt: skip
    finally:
        await conn.close()


async def _end_transaction(conn: asyncpg.Connection) -> None:
    """The service's pool reset (services/policy_service/adapters/database.py)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def build(pool: asyncpg.Pool) -> web.Application:
    async def read(request: web.Request) -> web.Response:
        row = await pool.fetchrow(
            "SELECT id, body, version FROM bare.items WHERE id = $1",
            uuid.UUID(request.match_info["id"]),
        )
        if row is None:
            raise web.HTTPNotFound()
        body = {"id": str(row["id"]), "version": row["version"], **json.loads(row["body"])}
        return web.json_response(body)

    async def write(request: web.Request) -> web.Response:
        item = uuid.UUID(request.match_info["id"])
        change = await request.json()
        async with pool.acquire() as conn, conn.transaction():
            version = await conn.fetchval(
                "UPDATE bare.items SET body = body || $2::jsonb, version = version + 1"
                " WHERE id = $1 RETURNING version",
                item,
                json.dumps(change),
            )
            await conn.execute(
                "INSERT INTO bare.outbox (item, payload) VALUES ($1, $2)",
                item,
                json.dumps({"id": str(item), "version": version, **change}),
            )
        return web.json_response({"id": str(item), "version": version})

    app = web.Application()
    app.router.add_get("/read/{id}", read)
    app.router.add_patch("/write/{id}", write)
    return app


async def main(port: int, dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=32, reset=_end_transaction)
    runner = web.AppRunner(build(pool), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))  # the service's event loop too
