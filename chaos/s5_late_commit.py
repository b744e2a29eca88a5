"""5. Outbox late commit: transaction A writes its outbox row first (so its row id is
lower) but commits after B's; the relay polls every 50 ms meanwhile.

Several A transactions are held open at once, each with B writes through the API
committing behind it, and they commit in shuffled order. The rows are written like
``test_outbox.py``'s late-commit test does (``_late_event``).

Proves: every row is published, none skipped (the "sequence trap" of relays that read
``id > last``), and rows behind an open transaction wait for it instead.
"""

import asyncio
import json
import random
import time
from dataclasses import dataclass

import asyncpg

from chaos.lab import Lab, PolicyProc, WorkerRig, http_session, pool
from chaos.outbox import drained, published
from chaos.report import Result
from tests.integration.policy_service.support import Api, Tenant
from tests.integration.policy_service.test_outbox import _late_event


@dataclass(frozen=True)
class Size:
    late: int  # transactions that commit late
    early: int  # API writes committing behind each


SIZES = {"full": Size(20, 5), "ci": Size(5, 3)}
TITLE = "5 outbox late commit"
INSERT = (
    "INSERT INTO policy_service.outbox (topic, key, value, headers)"
    " VALUES ($1, $2, $3, $4::jsonb) RETURNING id"
)


async def run(lab: Lab, size: str, seed: int = 5) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.late} late transactions x {s.early} earlier commits")
    rng = random.Random(seed)
    dsn = await lab.database("s5")
    db = await pool(dsn)
    rig = WorkerRig(lab.bootstrap, dsn, lab.logs("s5"))  # only for its topic names
    late: list[asyncpg.Connection] = []
    service = PolicyProc(dsn, lab.bootstrap, rig.topics, lab.logs("s5"))
    try:
        service.start()
        async with http_session() as http:
            await service.wait_ready(http)
            tenant = Tenant(Api(http, service.base_url))
            late_ids: list[tuple[int, str]] = []
            early_rows: list[str] = []
            for _ in range(s.late):
                key, value = _late_event(tenant.partner_id)
                conn = await asyncpg.connect(dsn)
                late.append(conn)
                await conn.execute("BEGIN")
                row = await conn.fetchval(
                    INSERT,
                    rig.topics.policy_events,
                    key,
                    value,
                    json.dumps({"content-type": "application/cloudevents+json"}),
                )
                late_ids.append((row, json.loads(value)["id"]))
                for _ in range(s.early):
                    policy = await tenant.create_policy()  # commits while A is open
                    early_rows.append(policy["id"])
            await asyncio.sleep(0.5)  # ten relay polls: a relay reading "id > last" moves on
            held = await db.fetchval(
                "SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL"
            )
            trapped = await db.fetchval(
                "SELECT count(*) FROM unnest($1::bigint[]) AS late(id) WHERE EXISTS ("
                " SELECT 1 FROM policy_service.outbox o"
                " WHERE o.id > late.id AND o.published_at IS NOT NULL)",
                [row for row, _ in late_ids],
            )
            order = list(range(len(late)))
            rng.shuffle(order)
            committed_at = time.monotonic()
            for i in order:
                await late[i].execute("COMMIT")
                await tenant.create_policy()  # more writes between the late commits
            await drained(db)
            lag = time.monotonic() - committed_at
            out = await published(lab.bootstrap, db, tenant.partner_id)
            mine = {event_id for _, event_id in late_ids}
            seen = {e.id for e in out.events}
            result.figures.update(
                {
                    "late rows published": f"{len(mine & seen)}/{len(mine)}",
                    "rows committed behind them": len(early_rows) + len(late),
                    "all rows published": f"{out.rows - out.missing}/{out.rows}",
                    "skipped": out.missing,
                    "rows after a late one published while it was open": trapped,
                    "held back while open": held,
                    "drained after the last commit": f"{lag:.1f}s",
                }
            )
            result.check("every late row published", mine <= seen)
            result.check("none skipped", out.missing == 0)
            result.check("copies identical", out.differing == 0)
            result.check(
                "rows behind an open transaction waited for it",
                trapped == 0 and held >= len(early_rows),
            )
    finally:
        service.stop()
        for conn in late:
            await conn.close()
        await db.close()
    return result
