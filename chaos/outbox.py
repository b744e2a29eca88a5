"""Checks of the policy service's outbox against the bus and the worker's projection."""

import contextlib
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from chaos.lab import wait_until
from tests.integration.policy_service.support import Event, Tenant, collect_events

log = logging.getLogger("chaos")


async def pending(db: asyncpg.Pool) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL")
    )


async def drained(db: asyncpg.Pool, timeout: float = 120) -> None:
    async def empty() -> bool:
        return await pending(db) == 0

    await wait_until(empty, "the outbox drained", timeout=timeout, every=0.2)


@dataclass
class Published:
    """How the outbox rows of one partner made it to the bus."""

    rows: int = 0
    missing: int = 0  # rows whose event id never showed up
    copies: Counter[int] = field(default_factory=Counter)  # copies per event -> how many events
    misordered: int = 0  # events older than one already seen for the same key
    differing: int = 0  # copies of one id that are not identical
    events: list[Event] = field(default_factory=list)


async def published(
    bootstrap: str, db: asyncpg.Pool, partner: str, ids: set[str] | None = None
) -> Published:
    """Read the topics until every outbox row of ``partner`` (or only ``ids``) is there."""
    rows = await db.fetch(
        "SELECT topic, key, value FROM policy_service.outbox"
        " WHERE convert_from(value, 'UTF8')::jsonb ->> 'partnerid' = $1 ORDER BY id",
        partner,
    )
    out = Published()
    for topic in sorted({r["topic"] for r in rows}):
        mine = [r for r in rows if r["topic"] == topic]
        want = {json.loads(r["value"])["id"] for r in mine}
        if ids is not None:
            want &= ids
        out.rows += len(want)
        try:
            events = await collect_events(
                bootstrap, topic, {r["key"] for r in mine},
                lambda got, want=want: want <= {e.id for e in got}, timeout=60,
            )  # fmt: skip
        except AssertionError:
            events = []
        out.events.extend(events)
        out.missing += len(want - {e.id for e in events})
        by_id: dict[str, list[Event]] = {}
        for e in events:
            by_id.setdefault(e.id, []).append(e)
        for event_id, copies in by_id.items():
            if event_id in want:
                out.copies[len(copies)] += 1
            out.differing += any(c.envelope != copies[0].envelope for c in copies)
        last: dict[str, int] = {}
        seen: set[str] = set()
        for e in events:
            if e.id in seen:
                continue
            seen.add(e.id)
            if e.version < last.get(e.key, 0):
                out.misordered += 1
                log.warning(
                    "%s: v%d after v%d (%s@%d)", e.key, e.version, last[e.key], e.topic, e.offset
                )
            last[e.key] = max(last.get(e.key, 0), e.version)
    return out


async def projection_behind(db: asyncpg.Pool, partner: str, timeout: float = 60) -> int:
    """Aggregates of ``partner`` the worker's projection has not caught up with (after
    waiting up to ``timeout``): live ones at a lower version, gone ones not marked gone."""
    query = """
        SELECT
          (SELECT count(*) FROM policy_service.customers c
           LEFT JOIN import_worker.customers w ON w.id = c.id
           WHERE c.partner_id = $1 AND (w.id IS NULL OR w.version <> c.version OR w.removed))
        + (SELECT count(*) FROM policy_service.policies p
           LEFT JOIN import_worker.policies w ON w.id = p.id
           WHERE p.partner_id = $1 AND (w.id IS NULL OR w.version <> p.version OR w.deleted))
    """

    async def caught_up() -> bool:
        return bool(await db.fetchval(query, partner) == 0)

    with contextlib.suppress(AssertionError):  # then counted below
        await wait_until(caught_up, "the projection catching up", timeout=timeout, every=0.2)
    return int(await db.fetchval(query, partner))


async def change_many(
    tenant: Tenant,
    count: int,
    rng: random.Random,
    after: Callable[[], Awaitable[object]] | None = None,
) -> Counter[int]:
    """``count`` writes of every kind (policies and customers: add, change, assign,
    delete), ``after`` each; returns the statuses. Each write commits outbox rows."""
    statuses: Counter[int] = Counter()
    policy = await tenant.create_policy("end_user", is_default=True)
    customers: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if not customers or roll < 0.35:
            reply = await tenant.call(
                "POST", "/v1/customers", json_body={"name": f"c {uuid.uuid4().hex[:8]}"}
            )
            if reply.status == 201:
                customers.append(reply.body["id"])
        elif roll < 0.6:
            reply = await tenant.call(
                "PATCH",
                f"/v1/customers/{rng.choice(customers)}",
                json_body={"psa": {"provider": "halo", "company_id": uuid.uuid4().hex[:6]}},
            )
        elif roll < 0.8:
            reply = await tenant.call(
                "PATCH",
                f"/v1/import-policies/{policy['id']}",
                json_body={"description": uuid.uuid4().hex},
            )
        elif roll < 0.9:
            reply = await tenant.call(
                "POST",
                "/v1/import-policies",
                json_body={
                    "account_type": "administrator",
                    "name": f"a {uuid.uuid4().hex}",
                    "customer_ids": rng.sample(customers, min(2, len(customers))),
                },
            )
        else:
            reply = await tenant.call("DELETE", f"/v1/customers/{customers.pop()}")
        statuses[reply.status] += 1
        if after is not None:
            await after()
    return statuses
