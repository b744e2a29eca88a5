"""3. PostgreSQL restart under load: the import worker decides discoveries and the policy
service takes writes (and relays their events) while PostgreSQL is stopped and started
again, then SIGKILLed and started again (crash recovery).

Proves: both services recover by themselves (no restart, no manual step); every write
the API acknowledged is stored and its event published; every discovery is decided;
the worker's projection catches up with every change; while PostgreSQL is away the API
answers 503 with ``Retry-After`` (problem JSON), never a 500.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from chaos.audit import audit_worker, wait_committed
from chaos.lab import (
    Lab,
    PolicyProc,
    WorkerRig,
    http_session,
    pool,
    producer,
    projection_events,
    wait_until,
)
from chaos.outbox import drained, projection_behind, published
from chaos.report import Result
from chaos.workload import Load, World, produce
from schemas.enums import AccountType
from services.decision import CustomerView, EffectivePolicy
from services.infra.devstack import LocalPostgres
from tests.integration.policy_service.support import Api, Tenant


@dataclass(frozen=True)
class Size:
    events: int
    rate: int


SIZES = {"full": Size(30_000, 1000), "ci": Size(6_000, 400)}
TITLE = "3 PostgreSQL restart under load"
GRACE = 15.0  # seconds after PostgreSQL is back within which a refused write is expected


@dataclass
class Writes:
    """The policy service load: acknowledged versions per aggregate, refusals by cause."""

    acked: dict[str, int] = field(default_factory=dict)  # aggregate id -> last acked version
    kinds: dict[str, str] = field(default_factory=dict)  # aggregate id -> customer | policy
    refused: Counter[str] = field(default_factory=Counter)
    refused_at: list[float] = field(default_factory=list)
    unavailable_without_hint: int = 0  # 503s with no Retry-After, or not problem JSON
    ok: int = 0


async def _writer(tenant: Tenant, writes: Writes, stop: asyncio.Event, rng: random.Random) -> None:
    mine: list[str] = []
    while not stop.is_set():
        try:
            if not mine or rng.random() < 0.3:
                if rng.random() < 0.5:
                    method, path = "POST", "/v1/customers"
                    body = {"name": f"load {uuid.uuid4().hex[:8]}"}
                else:
                    method, path = "POST", "/v1/import-policies"
                    body = {"account_type": "administrator", "name": f"p {uuid.uuid4().hex}"}
            else:
                target = rng.choice(mine)
                kind = "customers" if writes.kinds[target] == "customer" else "import-policies"
                method, path = "PATCH", f"/v1/{kind}/{target}"
                body = {"name": f"renamed {uuid.uuid4().hex[:8]}"}
            reply = await tenant.call(method, path, json_body=body)
            if reply.status in (200, 201):
                got = reply.body
                if got["id"] not in writes.kinds:
                    writes.kinds[got["id"]] = "customer" if "customers" in path else "policy"
                    mine.append(got["id"])
                writes.acked[got["id"]] = max(writes.acked.get(got["id"], 0), got["version"])
                writes.ok += 1
            else:
                writes.refused[str(reply.status)] += 1
                writes.refused_at.append(time.monotonic())
                hinted = "Retry-After" in reply.headers and reply.content_type.endswith(
                    "problem+json"
                )
                if reply.status == 503 and not hinted:
                    writes.unavailable_without_hint += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            writes.refused[type(exc).__name__] += 1
            writes.refused_at.append(time.monotonic())
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.01)


async def _setup(tenant: Tenant) -> tuple[World, list[str]]:
    """Default policies of both types, customers with various mappings; the world they make."""
    eu = await tenant.create_policy(
        "end_user",
        is_default=True,
        options={
            "documentation": {"match": True, "create_if_missing": True},
            "psa": {"match": True, "create_if_missing": True},
            "send_welcome_email": True,
            "enable_self_serve_reset": True,
            "sync_password_to_m365": True,
        },
    )
    await tenant.create_policy(
        "administrator",
        is_default=True,
        options={"save_password_in_vault": True, "enable_password_rotation": True},
    )
    psa = {"provider": "connectwise", "company_id": "shared"}
    bodies = [
        {"psa": psa, "documentation": {"provider": "itglue", "organization_id": "1"}},
        {"psa": psa},
        {"psa": {"provider": "halo", "company_id": "own"}},
        {"documentation": {"provider": "hudu", "organization_id": "4"}},
    ]
    ids = [(await tenant.add_customer(**b))["id"] for b in bodies]
    policies = {p["id"]: p for p in await tenant.policies()}
    world = World(partners=[tenant.partner_id], by_partner={tenant.partner_id: []})
    world.policies = len(policies)
    for cid in ids:
        c = await tenant.customer(cid)
        view = CustomerView(
            id=cid,
            partner_id=tenant.partner_id,
            psa=c["psa"],
            documentation=c["documentation"],
            psa_company_shared=c["psa"] == psa,
        )
        effective: dict[AccountType, EffectivePolicy | None] = {}
        for t in AccountType:
            pid = c["policy_ids"][t.value]
            p = policies[pid]
            effective[t] = EffectivePolicy(
                id=pid, version=p["version"], account_type=t, options=p["options"]
            )
        world.customers[uuid.UUID(cid)] = (view, effective)
        world.by_partner[tenant.partner_id].append(uuid.UUID(cid))
    return world, [eu["id"], *ids]


async def _outage(pg: object, how: str, seconds: float) -> float:
    """Stop (fast) or SIGKILL PostgreSQL, wait, start it; the time it was down."""
    began = time.monotonic()
    await asyncio.to_thread(pg.kill if how == "kill" else pg.stop)  # type: ignore[attr-defined]
    await asyncio.sleep(seconds)
    await asyncio.to_thread(pg.start)  # type: ignore[attr-defined]
    return time.monotonic() - began


Outage = Callable[[LocalPostgres, str, float], Awaitable[object]]


async def run(lab: Lab, size: str, seed: int = 3) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.events} events at {s.rate}/s + API writes; stop and SIGKILL")
    return await under_load(lab, "s3", s, seed, result, _outage, ("stop", "kill"))


async def under_load(
    lab: Lab,
    name: str,
    s: Size,
    seed: int,
    result: Result,
    outage: Outage,
    kinds: tuple[str, ...],
) -> Result:
    """Discoveries and API writes flow while ``outage(pg, kind, seconds)`` strikes the
    database once per kind (spread over the load); then everything is audited."""
    with lab.own_postgres() as pg:
        dsn = await lab.database(name, server=pg)
        db = await pool(dsn)
        rig = WorkerRig(lab.bootstrap, dsn, lab.logs(name))
        service = PolicyProc(dsn, lab.bootstrap, rig.topics, lab.logs(name))
        try:
            async with http_session() as http, producer(lab.bootstrap) as prod, rig:
                service.start()
                await rig.start_all(http)
                await service.wait_ready(http)
                api = Api(http, service.base_url)
                owner, writer = Tenant(api), Tenant(api)
                world, watched = await _setup(owner)
                await _projected(db, watched)
                sent = Load(world, rediscovery=0.5, seed=seed).take(s.events)

                writes, stop = Writes(), asyncio.Event()
                writers = [
                    asyncio.create_task(_writer(writer, writes, stop, random.Random(seed + i)))
                    for i in range(3)
                ]
                load = asyncio.create_task(
                    produce(prod, rig.topics.account_discovered, sent, rate=s.rate, chunk=100)
                )
                rng, span = random.Random(seed), s.events / s.rate
                recovered: list[float] = []
                outages: list[tuple[float, float]] = []
                for i, how in enumerate(kinds):
                    at = (i + 1) / (len(kinds) + 1) * 0.8
                    await asyncio.sleep(max(0.0, at * span - sum(b - a for a, b in outages)))
                    began = time.monotonic()
                    await outage(pg, how, rng.uniform(2, 4))
                    back = time.monotonic()
                    outages.append((began, back))
                    recovered.append(await _recovery(http, service, rig, writer) - back)
                await load
                await asyncio.sleep(1)
                stop.set()
                await asyncio.gather(*writers)

                await wait_committed(rig, sent, timeout=300)
                await drained(db)
                await _judge(lab, db, rig, service, writer, writes, outages, recovered, result)
                await audit_worker(rig, sent, world, db, result)
                skipped = sum(
                    [await projection_events(http, w.base_url, "refused") for w in rig.workers]
                )
                result.figures["projection events skipped"] = int(skipped)
                result.check("no projection event skipped", skipped == 0)
        finally:
            service.stop()
            await db.close()
    return result


async def _judge(
    lab: Lab,
    db: asyncpg.Pool,
    rig: WorkerRig,
    service: PolicyProc,
    writer: Tenant,
    writes: Writes,
    outages: list[tuple[float, float]],
    recovered: list[float],
    result: Result,
) -> None:
    """The policy service's figures: writes, their events, the worker's projection."""
    out = await published(lab.bootstrap, db, writer.partner_id)
    behind = await projection_behind(db, writer.partner_id)
    unexpected = [t for t in writes.refused_at if not any(a <= t <= b + GRACE for a, b in outages)]
    lost_writes = await _lost_writes(db, writes)
    restarts = service.starts - 1 + sum(w.starts - 1 for w in rig.workers)
    result.figures.update(
        {
            "outages (s down)": ", ".join(f"{b - a:.1f}" for a, b in outages),
            "ready again after (s)": ", ".join(f"{x:.1f}" for x in recovered),
            "API writes acked": writes.ok,
            "refused during outages": dict(writes.refused),
            "acked writes lost": lost_writes,
            "events unpublished": out.missing,
            "worker projection behind": behind,
            "process restarts": restarts,
        }
    )
    alive = service.alive() and all(w.alive() for w in rig.workers)
    result.check("both services recovered without a restart", restarts == 0 and alive)
    result.check("ready again within 60 s of each restart", all(x < 60 for x in recovered))
    result.check("no write refused outside the outages", not unexpected)
    result.check(
        "refusals are 503 with Retry-After (never 500)",
        set(writes.refused) <= {"503", "ClientOSError", "ServerDisconnectedError"}
        and writes.unavailable_without_hint == 0,
    )
    result.check("every acked write stored", lost_writes == 0)
    result.check("every stored change published", out.missing == 0)
    result.check("per-key order of published versions", out.misordered == 0)
    result.check("copies of an event identical", out.differing == 0)
    result.check("worker projection caught up", behind == 0)


async def _projected(db: asyncpg.Pool, ids: list[str]) -> None:
    async def done() -> bool:
        n = await db.fetchval(
            "SELECT count(*) FROM (SELECT id FROM import_worker.customers UNION ALL"
            " SELECT id FROM import_worker.policies) x WHERE id = ANY($1::uuid[])",
            ids,
        )
        return bool(n == len(ids))

    await wait_until(done, "the worker's projection of the set-up", timeout=60)


async def _recovery(
    http: aiohttp.ClientSession, service: PolicyProc, rig: WorkerRig, tenant: Tenant
) -> float:
    """When both services were ready again and the API took a write."""

    async def ready() -> bool:
        if not await service.ready(http):
            return False
        for w in rig.workers:
            status, _ = await w.get(http, "/readyz")
            if status != 200:
                return False
        reply = await tenant.call("POST", "/v1/customers", json_body={"name": "probe"})
        return reply.status == 201

    await wait_until(ready, "both services ready after the restart", timeout=120, every=0.2)
    return time.monotonic()


async def _lost_writes(db: asyncpg.Pool, writes: Writes) -> int:
    rows = await db.fetch(
        "SELECT id::text, version FROM policy_service.customers WHERE id = ANY($1::uuid[])"
        " UNION ALL SELECT id::text, version FROM policy_service.policies"
        " WHERE id = ANY($1::uuid[])",
        list(writes.acked),
    )
    stored = {r["id"]: r["version"] for r in rows}
    return sum(1 for i, v in writes.acked.items() if stored.get(i, 0) < v)
