"""10. Start-up gate: a worker starts on an EMPTY database while ``policy.events`` and
``customer.events`` already hold thousands of customers (as after a database restore, a
new region, or a replaced projection), with a backlog of their discoveries waiting.

Proves: the worker decides nothing before its projection has caught up with the
topics as they were at start-up; ``/readyz`` says so (503 with the reason) meanwhile;
then every discovery is decided with the right policy, none is retried or
dead-lettered as ``unknown_customer``.
"""

import asyncio
import time
from dataclasses import dataclass

from chaos.lab import Lab, WorkerRig, http_session, producer, wait_until
from chaos.report import Result
from schemas.enums import AccountType
from tests.integration.import_worker.events import (
    account,
    customer,
    discovered,
    end_user_options,
    new_partner,
    policy,
)
from tests.integration.import_worker.support import Bus


@dataclass(frozen=True)
class Size:
    customers: int
    per_customer: int  # discoveries waiting per customer


SIZES = {"full": Size(20_000, 2), "ci": Size(2_000, 2)}
TITLE = "10 start-up gate"


async def run(lab: Lab, size: str) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.customers} customers on the topics, empty database")
    dsn = await lab.database("s10")
    rig = WorkerRig(lab.bootstrap, dsn, lab.logs("s10"), extra_env={"RETRY_DELAYS_SECONDS": "[]"})
    async with http_session() as http, producer(lab.bootstrap) as prod, rig:
        bus = Bus(prod, rig.topics)
        partner = new_partner()
        state = policy(partner, AccountType.END_USER, end_user_options())
        customers = [customer(partner, end_user=state.id) for _ in range(s.customers)]
        await bus.policy(state)
        for i in range(0, len(customers), 500):
            await asyncio.gather(*(bus.customer(c) for c in customers[i : i + 500]))
        events = [
            discovered(partner, account(c.id)) for c in customers for _ in range(s.per_customer)
        ]
        for i in range(0, len(events), 500):
            await asyncio.gather(*(bus.discovered(e) for e in events[i : i + 500]))

        worker = rig.workers[0]
        started = time.monotonic()
        worker.start()
        reasons: set[str] = set()

        async def ready() -> bool:
            assert worker.alive(), worker.log_tail()
            try:
                status, body = await worker.get(http, "/readyz")
            except Exception:
                return False
            if status == 503 and "catching up" in body:
                reasons.add("catching up")
            return status == 200

        await wait_until(ready, "the worker ready", timeout=300, every=0.05)
        caught_up = time.monotonic() - started
        assert rig.reader is not None
        decisions = rig.topics.import_decisions
        await rig.reader.wait_for(
            lambda records: sum(r.topic == decisions for r in records) >= len(events),
            "every discovery decided",
            timeout=300,
        )
        decided = time.monotonic() - started
        await rig.reader.drain()
        mine = [r for r in rig.reader.records if r.topic == decisions]
        dead = [r for r in rig.reader.records if r.topic == rig.topics.account_discovered_dlq]
        outcomes: dict[str, int] = {}
        for r in mine:
            outcome = r.envelope["data"]["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        retried = await worker.metric(http, 'import_events_total{outcome="retried"}')
        result.figures.update(
            {
                "customers projected before deciding": s.customers,
                "discoveries waiting": len(events),
                "ready (caught up) after": f"{caught_up:.1f}s",
                "/readyz said why meanwhile": "yes" if reasons else "not seen",
                "all decided after": f"{decided:.1f}s",
                "decisions": outcomes,
                "retried": int(retried),
                "dead-lettered": len(dead),
            }
        )
        result.check("every discovery decided once", len(mine) == len(events))
        result.check("all imported by their policy", outcomes == {"imported": len(events)})
        result.check("none retried or dead-lettered", retried == 0 and not dead)
    return result
