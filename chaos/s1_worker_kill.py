"""1. Worker SIGKILL: the worker is SIGKILLed at random moments while it works through a
stream of discoveries (new and rediscovered accounts, several partners, customers and
policies), and restarted each time.

Proves: no decision lost; the ledger holds exactly one row per imported account;
commands may be re-sent after a kill, but every copy carries the same id and data.
"""

import asyncio
import random
import time
from dataclasses import dataclass

from chaos.audit import audit_worker, wait_committed
from chaos.lab import Lab, WorkerRig, http_session, pool, producer, wait_until
from chaos.report import Result
from chaos.workload import Load, produce, seed_world


@dataclass(frozen=True)
class Size:
    events: int
    kills: int
    batch: int


SIZES = {"full": Size(100_000, 5, 2000), "ci": Size(10_000, 5, 500)}
TITLE = "1 worker SIGKILL"


async def run(lab: Lab, size: str, seed: int = 1) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.events} events, {s.kills} random SIGKILLs")
    rng = random.Random(seed)
    dsn = await lab.database("s1")
    db = await pool(dsn)
    rig = WorkerRig(
        lab.bootstrap, dsn, lab.logs("s1"), extra_env={"BATCH_MAX_RECORDS": str(s.batch)}
    )
    try:
        world = await seed_world(db, partners=3)
        sent = Load(world, rediscovery=0.5, seed=seed).take(s.events)
        async with http_session() as http, producer(lab.bootstrap) as prod, rig:
            await produce(prod, rig.topics.account_discovered, sent)
            worker = rig.workers[0]
            worker.start()
            await worker.wait_ready(http, timeout=90)

            async def done() -> int:
                return sum((await rig.committed()).values())

            at_kill = []
            for fraction in sorted(rng.uniform(0.05, 0.9) for _ in range(s.kills)):
                target = max(int(fraction * s.events), await done() + s.events // 50)

                async def reached(target: int = target) -> bool:
                    return await done() >= target

                await wait_until(reached, f"{target} events committed", timeout=300, every=0.02)
                await asyncio.sleep(rng.uniform(0, 0.25))  # somewhere inside a batch
                worker.kill()
                at_kill.append(await done())
                await asyncio.sleep(rng.uniform(0, 1))
                worker.start()
            started = time.monotonic()
            await wait_committed(rig, sent, timeout=600)
            result.figures["kills (committed at each)"] = ", ".join(map(str, at_kill))
            result.check("every kill landed mid-stream", all(n < s.events for n in at_kill))
            result.check("the worker was killed as often as asked", len(at_kill) == s.kills)
            result.figures["drain after last restart"] = f"{time.monotonic() - started:.0f}s"
            await audit_worker(rig, sent, world, db, result)
    finally:
        await db.close()
    return result
