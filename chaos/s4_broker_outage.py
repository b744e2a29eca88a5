"""4. Broker down while the policy service takes writes; then the relay killed between
the broker's ack and "mark published".

Part A: the broker stops; writes of every kind keep succeeding and the outbox grows
with each; the broker comes back (empty: Tansu keeps nothing) and every outbox row is
published, in per-key order. Part B: the relay (``policy-service relay``) publishes a
batch but a trigger makes its "mark published" wait for a lock the scenario holds; the relay
is SIGKILLed right there and started again.

Proves: an outage delays events and never loses them; a relay crash after the ack
re-publishes the same events (same ids, same bytes), and the import worker's
projection, fed both copies, ends exactly at the service's state.
"""

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass

import asyncpg

from chaos.lab import (
    Lab,
    PolicyProc,
    WorkerRig,
    http_session,
    pool,
    projection_events,
    wait_until,
    watchful,
)
from chaos.outbox import change_many, drained, pending, projection_behind, published
from chaos.report import Result
from services.infra.devstack import LocalBroker
from tests.integration.policy_service.support import Api, Tenant


@dataclass(frozen=True)
class Size:
    outage_writes: int
    relay_writes: int


SIZES = {"full": Size(1000, 300), "ci": Size(150, 60)}
TITLE = "4 broker down, relay killed"
OK = {200, 201, 204}


STALL_LOCK = 4_242_004
_STALL_MARKING = f"""
CREATE OR REPLACE FUNCTION policy_service.chaos_stall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({STALL_LOCK});
    RETURN NEW;
END $$;
CREATE TRIGGER chaos_stall BEFORE UPDATE OF published_at ON policy_service.outbox
    FOR EACH ROW EXECUTE FUNCTION policy_service.chaos_stall();
"""
_UNSTALL = """
DROP TRIGGER IF EXISTS chaos_stall ON policy_service.outbox;
DROP FUNCTION IF EXISTS policy_service.chaos_stall();
"""


async def _relay_waiting(db: asyncpg.Pool) -> bool:
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'chaos-relay' AND wait_event_type = 'Lock'"
        )
    )


async def _relay_gone(db: asyncpg.Pool) -> bool:
    return not await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chaos-relay'"
    )


async def run(lab: Lab, size: str, seed: int = 4) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.outage_writes} writes while down, {s.relay_writes} re-published")
    rng = random.Random(seed)
    dsn = await lab.database("s4")
    db = await pool(dsn)
    logs = lab.logs("s4")
    started: list[PolicyProc] = []
    try:
        with lab.own_broker("s4") as broker:
            rig = WorkerRig(broker.bootstrap, dsn, logs)
            api_proc = PolicyProc(
                dsn, broker.bootstrap, rig.topics, logs, extra_env={"RELAY_ENABLED": "false"}
            )
            relay = PolicyProc(
                watchful(dsn, "chaos-relay"),
                broker.bootstrap,
                rig.topics,
                logs,
                command="relay",
                extra_env={"RELAY_BATCH_SIZE": "10000"},  # part B: one batch, killed whole
            )
            started += [api_proc, relay]
            async with http_session() as http, rig:
                api_proc.start()
                relay.start()
                await api_proc.wait_ready(http)
                tenant = Tenant(Api(http, api_proc.base_url))
                # The relay works before the outage (another partner: Tansu forgets it all).
                await Tenant(tenant.api).create_policy("administrator")
                await drained(db)
                await _outage(broker, db, tenant, s.outage_writes, rng, result)
                await rig.start_all(http)
                republished = await _relay_killed(
                    broker, dsn, db, relay, tenant, s.relay_writes, rng, result
                )
                behind = await projection_behind(db, tenant.partner_id)
                stale = await projection_events(http, rig.workers[0].base_url, "stale")
                result.figures["worker: stale copies ignored"] = int(stale)
                result.figures["worker projection behind"] = behind
                result.check("the worker's projection is exact", behind == 0)
                result.check("the worker ignored the stale copies", stale >= republished)
    finally:
        for proc in started:
            proc.stop()
        await db.close()
    return result


async def _outage(
    broker: LocalBroker,
    db: asyncpg.Pool,
    tenant: Tenant,
    writes: int,
    rng: random.Random,
    result: Result,
) -> None:
    """A: the broker is down while writes go on, then comes back empty."""
    await asyncio.to_thread(broker.stop)
    sizes = [await pending(db)]

    async def grew() -> None:
        sizes.append(await pending(db))

    statuses = await change_many(tenant, writes, rng, after=grew)
    back_at = time.monotonic()
    await asyncio.to_thread(broker.start)  # same port, empty
    await drained(db, timeout=180)
    drained_in = time.monotonic() - back_at
    a = await published(broker.bootstrap, db, tenant.partner_id)
    result.figures.update(
        {
            "writes while down (status)": dict(statuses),
            "outbox backlog at the broker's return": sizes[-1],
            "drained after return": f"{drained_in:.1f}s",
            "outbox rows/events published": f"{a.rows}/{a.rows - a.missing}",
            "copies per event": dict(sorted(a.copies.items())),
            "per-key order violations": a.misordered,
        }
    )
    result.check("every write succeeded while the broker was down", set(statuses) <= OK)
    result.check("the outbox grew with every write", sizes == sorted(set(sizes)))
    result.check("every outbox row published", a.missing == 0)
    result.check("in per-key order", a.misordered == 0)
    result.check("copies of an event are identical", a.differing == 0)


async def _relay_killed(
    broker: LocalBroker,
    dsn: str,
    db: asyncpg.Pool,
    relay: PolicyProc,
    tenant: Tenant,
    writes: int,
    rng: random.Random,
    result: Result,
) -> int:
    """B: the relay dies between the broker's ack and "mark published"."""
    relay.stop()  # frees the relay lock; rows now wait
    await change_many(tenant, writes, rng)
    rows = await db.fetch("SELECT id, value FROM policy_service.outbox WHERE published_at IS NULL")
    ids = {json.loads(r["value"])["id"] for r in rows}
    # The relay locks its rows before it sends (so a read-only database sends nothing),
    # so holding the rows would stop it before the broker: stall its "mark published"
    # instead, with a trigger that waits for a lock this scenario holds.
    await db.execute(_STALL_MARKING)
    lock = await asyncpg.connect(dsn)
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", STALL_LOCK)
        relay.start()
        first = await published(broker.bootstrap, db, tenant.partner_id, ids)
        await wait_until(lambda: _relay_waiting(db), "the relay's mark-published blocked", 60)
        relay.kill()
        # what PostgreSQL does when it notices the client gone: end its session, roll back
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'chaos-relay'"
        )
        await wait_until(lambda: _relay_gone(db), "the killed relay's session", 30)
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await lock.execute("SELECT pg_advisory_unlock($1)", STALL_LOCK)
        await lock.close()
        await db.execute(_UNSTALL)
    unmarked = await pending(db)
    await change_many(tenant, 5, rng)  # newer versions, after the first copies
    relay.start()
    await drained(db)
    b = await published(broker.bootstrap, db, tenant.partner_id, ids)
    twice = sum(n for copies, n in b.copies.items() if copies >= 2)
    result.figures.update(
        {
            "acked before the kill": f"{len(ids) - first.missing}/{len(ids)}",
            "left unmarked by the kill": unmarked,
            "re-published with the same id": f"{twice}/{len(ids)}",
        }
    )
    result.check("the relay had published the batch before the kill", first.missing == 0)
    result.check("the kill left the batch unmarked", unmarked == len(ids))
    result.check("re-published after the restart, same ids", twice == len(ids) and not b.missing)
    result.check("re-published copies identical", b.differing == 0)
    result.check("still in per-key order", b.misordered == 0)
    return len(ids)
