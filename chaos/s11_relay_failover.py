"""11. Relay failover: two ``policy-service relay`` processes on one database (the API
runs with ``RELAY_ENABLED=false``) while writes of every kind keep coming; three times,
the leader's PostgreSQL session (the one holding the advisory lock) is killed with
``pg_terminate_backend``.

Proves: the standby takes over within 15 s each time; the old leader stops
publishing and stands by; every outbox row is published, each key's versions first
seen in order (the batch the old leader had handed to the broker may be re-sent:
same ids, identical copies).
"""

import asyncio
import random
import time
from dataclasses import dataclass

import asyncpg

from chaos.lab import Lab, PolicyProc, WorkerRig, http_session, pool, wait_until, with_params
from chaos.outbox import change_many, drained, published
from chaos.report import Result
from tests.integration.policy_service.support import Api, Tenant


@dataclass(frozen=True)
class Size:
    writes: int
    kills: int


SIZES = {"full": Size(1500, 5), "ci": Size(300, 3)}
TITLE = "11 relay failover"
APP = "chaos-relay-failover"
OK = {200, 201, 204}


async def _leader(db: asyncpg.Pool) -> int | None:
    pid: int | None = await db.fetchval(
        """SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
             AND a.application_name = $1""",
        APP,
    )
    return pid


async def run(lab: Lab, size: str, seed: int = 11) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.writes} writes, 2 relays, leader's session killed {s.kills}x")
    rng = random.Random(seed)
    dsn = await lab.database("s11")
    db = await pool(dsn)
    logs = lab.logs("s11")
    topics = WorkerRig(lab.bootstrap, dsn, logs).topics  # only for its topic names
    relay_dsn = with_params(dsn, application_name=APP)
    api = PolicyProc(dsn, lab.bootstrap, topics, logs, extra_env={"RELAY_ENABLED": "false"})
    relays = [PolicyProc(relay_dsn, lab.bootstrap, topics, logs, command="relay") for _ in range(2)]
    try:
        api.start()
        for relay in relays:
            relay.start()
        async with http_session() as http:
            await api.wait_ready(http)
            tenant = Tenant(Api(http, api.base_url))
            writing = asyncio.create_task(change_many(tenant, s.writes, rng))
            takeovers: list[float] = []
            for _ in range(s.kills):
                leader = await wait_until(lambda: _leader(db), "a relay holding the lock", 30)
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                killed = time.monotonic()
                await db.fetchval("SELECT pg_terminate_backend($1)", leader)

                async def successor(old: int = leader) -> bool:
                    pid = await _leader(db)
                    return pid is not None and pid != old

                await wait_until(successor, "another session holding the lock", 30, every=0.02)
                takeovers.append(time.monotonic() - killed)
            statuses = await writing
            await drained(db, timeout=120)
            out = await published(lab.bootstrap, db, tenant.partner_id)
            alive = all(r.alive() for r in relays)
            result.figures.update(
                {
                    "writes (status)": dict(sorted(statuses.items())),
                    "takeover after a kill (s)": ", ".join(f"{t:.2f}" for t in takeovers),
                    "outbox rows/events published": f"{out.rows - out.missing}/{out.rows}",
                    "copies per event": dict(sorted(out.copies.items())),
                    "per-key order violations": out.misordered,
                    "relay processes alive": f"{sum(r.alive() for r in relays)}/2",
                }
            )
            result.check("every write accepted", set(statuses) <= OK)
            result.check("standby took over within 15 s", all(t < 15 for t in takeovers))
            result.check("every row published", out.missing == 0)
            result.check("per-key order kept", out.misordered == 0)
            result.check("copies identical", out.differing == 0)
            result.check("no relay process died", alive)
    finally:
        api.stop()
        for relay in relays:
            relay.stop()
        await db.close()
    return result
