"""6. Slow batch + kill: a batch gets stuck in the middle while later batches could go on.

Two workers share the partitions. A test session inserts, and keeps uncommitted, ledger
rows for a few accounts that have not been discovered yet: the worker whose batch
holds them blocks inside its ledger transaction (a slow lookup, as far as it can tell),
while the other worker carries on with its partitions. The stuck worker is SIGKILLed;
the survivor takes its partitions over and blocks on the same rows; the killed worker
is started again while the survivor's batch is still stuck (a rebalance with a batch in
flight); only then is the lock released.

Proves: a stuck batch never lets its partition's offsets move past it, a kill loses
nothing of it, and a rebalance that abandons it neither crashes the worker holding it
nor skips it: the stuck events are decided after the restart, like every other one.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg

from chaos.audit import audit_worker, wait_committed
from chaos.lab import Lab, WorkerRig, http_session, pool, producer, wait_until
from chaos.report import Result
from chaos.workload import Load, Sent, World, end_offsets, produce, seed_world
from schemas.ids import decision_id


@dataclass(frozen=True)
class Size:
    before: int  # events processed before the lock
    after: int  # events produced while it is held
    stuck: int  # accounts whose ledger rows are locked


SIZES = {"full": Size(10_000, 20_000, 20), "ci": Size(2_000, 4_000, 10)}
TITLE = "6 slow batch + kill"
ABANDONED = "abandoned the batch in flight at a rebalance"
CRASH = "Crashed reason="
PLACEHOLDER = uuid.UUID(int=0)  # the locked rows are rolled back, never read


def _stuck(world: World, sent: list[Sent], seen: set[str], count: int) -> list[Sent]:
    """The first new, importable accounts of one customer in ``sent``."""
    picked: list[Sent] = []
    customer = None
    for s in sent:
        account = s.discovery.account
        if s.key in seen or world.decide(account).outcome.value != "imported":
            continue
        if customer is None:
            customer = account.customer_id
        if account.customer_id == customer and s.key not in {p.key for p in picked}:
            picked.append(s)
            if len(picked) == count:
                break
    return picked


async def _waiting(db: asyncpg.Pool) -> set[str]:
    """Application names of the workers' sessions waiting on a lock now."""
    rows = await db.fetch(
        "SELECT application_name FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND application_name LIKE 'chaos-w%'"
    )
    return {r["application_name"] for r in rows}


async def run(lab: Lab, size: str, seed: int = 6) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.before}+{s.after} events, {s.stuck} stuck accounts, 2 workers")
    dsn = await lab.database("s6")
    db = await pool(dsn)
    rig = WorkerRig(
        lab.bootstrap, dsn, lab.logs("s6"), count=2, extra_env={"BATCH_MAX_RECORDS": "500"}
    )
    lock: asyncpg.Connection | None = None
    try:
        world = await seed_world(db, partners=2)
        load = Load(world, rediscovery=0.5, seed=seed)
        before, after = load.take(s.before), load.take(s.after)
        more = load.take(s.after // 4)  # arrives after the kill, on every partition
        everything = [*before, *after, *more]
        stuck = _stuck(world, after, {x.key for x in before}, s.stuck)
        async with http_session() as http, producer(lab.bootstrap) as prod, rig:
            topic = rig.topics.account_discovered
            await rig.start_all(http)
            await produce(prod, topic, before)
            await wait_committed(rig, before)

            lock = await asyncpg.connect(dsn)
            await lock.execute("BEGIN")
            await lock.executemany(
                "INSERT INTO import_worker.ledger (account_key, partner_id, customer_id,"
                " policy_id, policy_version, decision_id) VALUES ($1, $2, $3, $4, 1, $5)",
                [
                    (x.key, x.partner, x.discovery.account.customer_id, PLACEHOLDER,
                     decision_id(x.key, x.event_id))
                    for x in stuck
                ],
            )  # fmt: skip
            await produce(prod, topic, after)
            blocked = await wait_until(
                lambda: _waiting(db), "a worker blocked on the locked rows", timeout=60
            )
            stuck_at = time.monotonic()
            index = int(next(iter(blocked)).removeprefix("chaos-w")) - 1
            victim, survivor = rig.workers[index], rig.workers[1 - index]

            # The other worker's partitions go on; the stuck one never commits past it.
            steady, last = 0, None
            while steady < 3 and time.monotonic() - stuck_at < 30:
                await asyncio.sleep(1)
                now = await rig.committed()
                steady = steady + 1 if now == last else 0
                last = now
            assert last is not None
            end = end_offsets([*before, *after])
            first_stuck = min(x.offset for x in stuck)
            stuck_partition = stuck[0].partition
            proceeded = [p for p, o in end.items() if last.get(p) == o]
            result.check(
                "the stuck partition never committed past the stuck batch",
                last.get(stuck_partition, 0) <= first_stuck,
            )
            result.check("other partitions went on meanwhile", bool(proceeded))
            result.figures["partitions at their end while stuck"] = f"{len(proceeded)}/{len(end)}"

            victim.kill()
            await produce(prod, topic, more)
            mine = f"chaos-w{rig.workers.index(survivor) + 1}"

            async def survivor_blocked() -> bool:
                return await _waiting(db) == {mine}  # and the victim's session is gone

            await wait_until(survivor_blocked, "the survivor blocked on the rows", timeout=60)
            result.figures["survivor blocked on the stuck batch"] = "yes"
            victim.start()  # a rebalance while the survivor's batch is stuck
            await victim.wait_ready(http, timeout=90)

            def abandoned() -> bool:
                return ABANDONED in survivor.log_tail(200)

            # The survivor waits 5 s for its batch at the rebalance, then gives it up.
            await wait_until(abandoned, "the survivor abandoning its batch", timeout=60)
            result.figures["survivor abandoned the batch at the rebalance"] = "yes"
            await asyncio.sleep(1)
            await lock.execute("ROLLBACK")
            result.figures["stuck for"] = f"{time.monotonic() - stuck_at:.0f}s"
            await wait_committed(rig, everything, timeout=300)
            await asyncio.sleep(3)  # a crash after the last commit would show by now
            crashes = sum(w.log_tail(10_000).count(CRASH) for w in rig.workers)
            result.figures["worker crashes"] = crashes
            result.check("no worker crashed", crashes == 0)
            result.check("both workers alive", victim.alive() and survivor.alive())
            decided = {r.envelope["causationid"] for r in _decisions(rig)}
            result.figures["stuck events decided"] = (
                f"{sum(1 for x in stuck if x.event_id in decided)}/{len(stuck)}"
            )
            result.check("every stuck event decided", all(x.event_id in decided for x in stuck))
            await audit_worker(rig, everything, world, db, result)
    finally:
        if lock is not None:
            await lock.close()
        await db.close()
    return result


def _decisions(rig: WorkerRig) -> list:  # type: ignore[type-arg]
    assert rig.reader is not None
    return [r for r in rig.reader.records if r.topic == rig.topics.import_decisions]
