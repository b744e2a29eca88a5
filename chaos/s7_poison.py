"""7. Poison input: fuzzed bus messages (Hypothesis) interleaved with valid discoveries on
``account.discovered``, plus fuzzed messages on the worker's projection topics.

Proves: the worker never crashes or stalls on bad input; every bad message is
dead-lettered, byte for byte, with the reason the contract names (after the retries,
for an unknown customer); every valid message is decided; garbage on
``policy.events``/``customer.events`` changes nothing.

One more kind of poison is not in the messages but in the worker's own table: one
customer's projected row is edited by hand into something the worker cannot read (a
PSA provider it does not know). Every discovery of that customer then fails whatever
batch holds it; the worker must isolate those records, dead-letter them
(``processing_failed``, detail ``processing failed: ...``) and decide all the others.
"""

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer

from chaos.lab import Lab, WorkerRig, http_session, pool, producer, projection_events, wait_until
from chaos.poison import Poison, draw, envelope, strategy
from chaos.report import Result
from chaos.workload import Load, World, seed_world
from schemas.enums import AccountType
from tests.integration.import_worker.events import CT_HEADER
from tests.integration.import_worker.support import Out


@dataclass(frozen=True)
class Size:
    fuzzed: int
    valid: int
    projection_fuzz: int


SIZES = {"full": Size(10_000, 5_000, 500), "ci": Size(1_500, 750, 100)}
TITLE = "7 poison input"
UNREADABLE = "unreadable customer"  # a valid discovery of the customer broken by hand
UNREADABLE_ERROR = "ValidationError"  # what reading that customer's row raises


def _assigned_customer(world: World, partner: str) -> uuid.UUID:
    """A customer of ``partner`` with an end-user policy (fuzzed valid ones get decided)."""
    for cid in world.by_partner[partner]:
        if world.customers[cid][1][AccountType.END_USER] is not None:
            return cid
    raise AssertionError("the world has no customer with an end-user policy")


def _extra_bad(world: World, rng: random.Random, n: int) -> list[Poison]:
    """Valid envelopes the worker must still refuse: unknown customer, another partner's."""
    partner, other = world.partners[0], world.partners[1]
    victim = _assigned_customer(world, partner)
    out = []
    for i in range(n):
        if i % 2:
            body = envelope(partner, uuid.UUID(int=rng.getrandbits(128)), 10**8 + i)
            out.append(Poison("unknown_customer", _json(body), frozenset({"unknown_customer"})))
        else:
            body = envelope(other, victim, 10**8 + i)
            out.append(Poison("partner_mismatch", _json(body), frozenset({"partner_mismatch"})))
    return out


async def _break_customer(db: asyncpg.Pool, world: World) -> uuid.UUID:
    """Make one customer's projected row unreadable to the worker; return its id."""
    broken = _assigned_customer(world, world.partners[1])
    await db.execute(
        "UPDATE import_worker.customers SET psa_provider = 'syncro' WHERE id = $1", broken
    )
    return broken


def _of_customer(value: bytes | None, customer_id: uuid.UUID) -> bool:
    return bool(json.loads(value or b"{}")["data"]["customer_id"] == str(customer_id))


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


async def _send(
    prod: AIOKafkaProducer, topic: str, messages: list[tuple[Poison, bytes | None]]
) -> list[tuple[int, int]]:
    where: list[tuple[int, int]] = []
    for i in range(0, len(messages), 500):
        futures = [
            await prod.send(topic, p.value, key=key, headers=CT_HEADER)
            for p, key in messages[i : i + 500]
        ]
        where.extend((m.partition, m.offset) for m in await asyncio.gather(*futures))
    return where


async def run(lab: Lab, size: str, seed: int = 7) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"{s.fuzzed} fuzzed + {s.valid} valid events")
    rng = random.Random(seed)
    dsn = await lab.database("s7")
    db = await pool(dsn)
    rig = WorkerRig(
        lab.bootstrap, dsn, lab.logs("s7"), extra_env={"RETRY_DELAYS_SECONDS": "[0.2,0.3]"}
    )
    try:
        world = await seed_world(db, partners=2)
        partner = world.partners[0]
        target = _assigned_customer(world, partner)
        fuzzed = draw(lambda: strategy(partner, target), s.fuzzed - s.fuzzed // 20, seed)
        fuzzed += _extra_bad(world, rng, s.fuzzed // 20)
        broken = await _break_customer(db, world)
        valid = [
            (
                Poison(UNREADABLE, x.discovery.value, frozenset({"processing_failed"}))
                if _of_customer(x.discovery.value, broken)
                else Poison("simulated", x.discovery.value, frozenset()),
                x.discovery.key,
            )
            for x in Load(world, rediscovery=0.0, seed=seed).take(s.valid)
        ]
        keys = [b"", None, str(target).encode(), rng.randbytes(8)]
        messages: list[tuple[Poison, bytes | None]] = [
            *((p, b"k" if p.value is None else rng.choice(keys)) for p in fuzzed),
            *valid,
        ]
        rng.shuffle(messages)
        garbage = draw(lambda: strategy(partner, target), s.projection_fuzz, seed + 1)
        before = await db.fetch(
            "SELECT id, version FROM import_worker.customers UNION ALL"
            " SELECT id, version FROM import_worker.policies ORDER BY 1"
        )
        async with http_session() as http, producer(lab.bootstrap) as prod, rig:
            worker = rig.workers[0]
            worker.start()
            await worker.wait_ready(http, timeout=90)
            started = time.monotonic()
            t = rig.topics
            where = await _send(prod, t.account_discovered, messages)
            half = len(garbage) // 2
            await _send(prod, t.policy_events, [(g, b"k") for g in garbage[:half]])
            await _send(prod, t.customer_events, [(g, None) for g in garbage[half:]])
            outcome = await _observe(rig, messages, where, worker.alive)

            async def ignored() -> float:
                return await projection_events(http, worker.base_url, "unreadable")

            with contextlib.suppress(AssertionError):  # counted below
                await wait_until(
                    lambda: _at_least(ignored, len(garbage)), "the projection garbage", 30
                )
            unreadable = await ignored()
            failures = await _failures(http, worker.base_url)
            isolated = failures.pop(UNREADABLE_ERROR, 0.0)
            alive = worker.alive()
        after = await db.fetch(
            "SELECT id, version FROM import_worker.customers UNION ALL"
            " SELECT id, version FROM import_worker.policies ORDER BY 1"
        )
        bad = [m for m in messages if m[0].reasons]
        unreadable_sent = sum(1 for p, _ in messages if p.kind == UNREADABLE)
        kinds = sorted({p.kind.split(".")[0] for p, _ in bad})
        result.figures.update(
            {
                "bad messages (kinds)": f"{len(bad)} ({len(kinds)} kinds)",
                "valid messages": len(messages) - len(bad),
                "dead-lettered by reason": outcome["reasons"],
                "bad not dead-lettered": outcome["bad missing"],
                "wrong reason": outcome["wrong reason"],
                "DLQ copies not byte-identical": outcome["altered"],
                "valid decided": f"{outcome['decided']}/{len(messages) - len(bad)}",
                "valid dead-lettered": outcome["valid dlq"],
                "projection garbage ignored": f"{int(unreadable)}/{len(garbage)}",
                "worker crashes": int(not alive) + worker.log_tail(10_000).count("Crashed reason="),
                "unreadable customer's records dead-lettered": (
                    f"{outcome['processing failed']}/{unreadable_sent}"
                ),
                "batches that needed isolating": int(isolated),
                "other batch failures": int(sum(failures.values())),
                "drained in": f"{time.monotonic() - started:.0f}s",
            }
        )
        result.check("worker crashes = 0", result.figures["worker crashes"] == 0)
        result.check("every bad message dead-lettered", outcome["bad missing"] == 0)
        result.check("with the contract's reason", outcome["wrong reason"] == 0)
        result.check("dead letters keep the original bytes", outcome["altered"] == 0)
        result.check("every valid message decided", outcome["decided"] == len(messages) - len(bad))
        result.check("no valid message dead-lettered", outcome["valid dlq"] == 0)
        result.check("projection garbage ignored", unreadable == len(garbage))
        result.check("projection unchanged by garbage", before == after)
        result.check(
            "unreadable customer's records isolated and dead-lettered",
            unreadable_sent > 0 and outcome["processing failed"] == unreadable_sent,
        )
        result.check("no batch failed on bad input", not any(failures.values()))
    finally:
        await db.close()
    return result


async def _at_least(count: Callable[[], Awaitable[float]], n: int) -> bool:
    return await count() >= n


async def _failures(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    """Failed batch attempts by error type (``import_batch_failures_total``)."""
    async with http.get(base_url + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("import_batch_failures_total{"):
            label = line.split('error="', 1)[1].split('"', 1)[0]
            found[label] = found.get(label, 0.0) + float(line.rpartition(" ")[2])
    return found


async def _observe(
    rig: WorkerRig,
    messages: list[tuple[Poison, bytes | None]],
    where: list[tuple[int, int]],
    alive: Callable[[], bool],
    timeout: float = 180,
) -> dict[str, object]:
    """Read the outputs until every message has its outcome (or ``timeout``); tally them."""
    assert rig.reader is not None
    at = dict(zip(where, messages, strict=True))
    dlq_topic, decisions = rig.topics.account_discovered_dlq, rig.topics.import_decisions
    want_bad = sum(1 for p, _ in messages if p.reasons)
    want_valid = len(messages) - want_bad
    ids = {i: _event_id(p.value) for i, (p, _) in enumerate(messages) if not p.reasons}
    deadline = time.monotonic() + timeout
    while True:
        await rig.reader.poll(timeout_ms=300)
        dead: dict[tuple[int, int], list[Out]] = {}
        for r in rig.reader.records:
            if r.topic == dlq_topic:
                origin = (int(r.header("x-original-partition")), int(r.header("x-original-offset")))
                dead.setdefault(origin, []).append(r)
        caused = {r.envelope.get("causationid") for r in rig.reader.records if r.topic == decisions}
        bad_done = sum(1 for w, (p, _) in at.items() if p.reasons and w in dead)
        valid_done = sum(1 for event_id in ids.values() if event_id in caused)
        if (bad_done == want_bad and valid_done == want_valid) or time.monotonic() > deadline:
            break
        if not alive():
            break
    reasons: dict[str, int] = {}
    wrong = altered = valid_dlq = processing_failed = 0
    missing = sorted({p.kind for w, (p, _) in at.items() if p.reasons and w not in dead})
    undecided = sorted({messages[i][0].kind for i, e in ids.items() if e not in caused})
    if missing or undecided:
        logging.getLogger("chaos").warning("no DLQ: %s; undecided: %s", missing, undecided)
    for w, (p, _) in at.items():
        for r in dead.get(w, []):
            reason = r.header("x-error-reason")
            reasons[reason] = reasons.get(reason, 0) + 1
            if not p.reasons:
                valid_dlq += 1
            elif reason not in p.reasons:
                wrong += 1
            elif p.kind == UNREADABLE:
                processing_failed += r.header("x-error-detail").startswith("processing failed:")
            if r.value != p.value:
                altered += 1
                logging.getLogger("chaos").warning("DLQ copy of a %s message differs", p.kind)
    return {
        "reasons": dict(sorted(reasons.items())),
        "bad missing": want_bad - bad_done,
        "wrong reason": wrong,
        "altered": altered,
        "decided": valid_done,
        "valid dlq": valid_dlq,
        "processing failed": processing_failed,
    }


def _event_id(value: bytes | None) -> str | None:
    try:
        return str(json.loads(value or b"")["id"])
    except (ValueError, KeyError, TypeError):
        return None
