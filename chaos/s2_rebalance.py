"""2. Two workers and rebalances: two worker processes in one consumer group while
discoveries arrive at a steady rate; every few seconds one of them is stopped
(alternately SIGTERM and SIGKILL) and started again, so partitions keep moving.

Proves: the figures of scenario 1 hold across rebalances, and each customer's
decisions keep the order of its discoveries.
"""

import asyncio
import random
from dataclasses import dataclass

from chaos.audit import audit_worker, wait_committed
from chaos.lab import Lab, WorkerRig, http_session, pool, producer
from chaos.report import Result
from chaos.workload import Load, produce, seed_world


@dataclass(frozen=True)
class Size:
    events: int
    rate: int  # events/s


SIZES = {"full": Size(100_000, 2000), "ci": Size(10_000, 500)}
TITLE = "2 two workers, rebalances"


async def run(lab: Lab, size: str, seed: int = 2) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.events} events at {s.rate}/s, 2 workers, one cycled every 2-4 s")
    rng = random.Random(seed)
    dsn = await lab.database("s2")
    db = await pool(dsn)
    rig = WorkerRig(
        lab.bootstrap, dsn, lab.logs("s2"), count=2, extra_env={"BATCH_MAX_RECORDS": "1000"}
    )
    try:
        world = await seed_world(db, partners=3)
        sent = Load(world, rediscovery=0.5, seed=seed).take(s.events)
        async with http_session() as http, producer(lab.bootstrap) as prod, rig:
            await rig.start_all(http)
            load = asyncio.create_task(
                produce(prod, rig.topics.account_discovered, sent, rate=s.rate, chunk=200)
            )
            cycled = {"SIGTERM": 0, "SIGKILL": 0}
            while not load.done():
                await asyncio.wait({load}, timeout=rng.uniform(2, 4))
                if load.done():
                    break
                victim = rig.workers[1]
                if sum(cycled.values()) % 2:
                    victim.kill()
                    cycled["SIGKILL"] += 1
                else:
                    victim.stop()
                    cycled["SIGTERM"] += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                victim.start()
            await load
            for w in rig.workers:
                if not w.alive():
                    w.start()
            await wait_committed(rig, sent, timeout=600)
            result.figures["stop/start cycles"] = cycled
            result.check("the other worker was cycled at least 3 times", sum(cycled.values()) >= 3)
            result.check("both workers alive at the end", all(w.alive() for w in rig.workers))
            await audit_worker(rig, sent, world, db, result, order=True)
    finally:
        await db.close()
    return result
