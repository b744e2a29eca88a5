"""At-least-once with no loss (docs/contract.md §3, Delivery): the worker is SIGKILLed
twice while it works through thousands of discoveries and restarted each time. In the end
every account is decided (an imported one exactly once), every command is on the wire
(duplicates are identical copies), the ledger is exact and every input offset committed."""

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.enums import AccountType
from schemas.ids import decision_id
from schemas.policy import PolicyState
from services.decision import CustomerView, EffectivePolicy, decide
from services.import_worker.adapters.projection import Projection
from services.import_worker.simulate import AgentSimulator, Discovery

from .events import (
    CT_HEADER,
    admin_options,
    customer,
    end_user_options,
    key_of,
    new_partner,
    policy,
)
from .support import Harness, Out
from .worker import wait_until

pytestmark = pytest.mark.timeout(180)

EVENTS = 5000


async def seed(
    db: asyncpg.Pool, partner: str, ids: Sequence[uuid.UUID] | None = None
) -> tuple[list[uuid.UUID], dict[uuid.UUID, Any]]:
    """Customers and policies, written to the projection as bench/worker_bench.py does;
    ``ids``: the five customers' ids (else random).

    Returns the customer ids and, per customer, what decide() needs of it.
    """
    eu = policy(partner, AccountType.END_USER, end_user_options())
    ad = policy(partner, AccountType.ADMINISTRATOR, admin_options())
    given = iter(ids or [None] * 5)
    customers = [
        customer(partner, end_user=eu.id, administrator=ad.id, psa=("connectwise", "A"),
                 documentation=("itglue", "0"), customer_id=next(given)),
        customer(partner, end_user=eu.id, administrator=ad.id, psa=("connectwise", "S"),
                 customer_id=next(given)),
        customer(partner, end_user=eu.id, administrator=ad.id, psa=("connectwise", "S"),
                 documentation=("hudu", "2"), customer_id=next(given)),
        customer(partner, end_user=eu.id, administrator=ad.id, customer_id=next(given)),
        customer(partner, end_user=eu.id, documentation=("itglue", "4"),
                 customer_id=next(given)),  # admins: no_policy
    ]  # fmt: skip
    projection = Projection(db)
    for state in (eu, ad, *customers):
        if isinstance(state, PolicyState):
            assert await projection.apply_policy(state)
        else:
            assert await projection.apply_customer(state)
    policies = {
        p.account_type: EffectivePolicy(
            id=p.id, version=p.version, account_type=p.account_type, options=p.options
        )
        for p in (eu, ad)
    }
    inputs: dict[uuid.UUID, Any] = {}
    for c in customers:
        view = CustomerView(
            id=c.id,
            partner_id=partner,
            psa=c.psa,
            documentation=c.documentation,
            psa_company_shared=c.psa is not None and c.psa.company_id == "S",
        )
        assigned = {
            AccountType.END_USER: c.policy_ids.end_user,
            AccountType.ADMINISTRATOR: c.policy_ids.administrator,
        }
        inputs[c.id] = (view, {t: policies[t] if assigned[t] else None for t in assigned})
    return [c.id for c in customers], inputs


async def produce(producer: AIOKafkaProducer, topic: str, events: list[Discovery]) -> list[Any]:
    landed = []
    for i in range(0, len(events), 1000):
        futures = [
            await producer.send(topic, d.value, key=d.key, headers=CT_HEADER)
            for d in events[i : i + 1000]
        ]
        landed.extend(await asyncio.gather(*futures))
    return landed


@contextlib.asynccontextmanager
async def slow_ledger_commit(
    db: asyncpg.Pool, partner: str, seconds: float
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Make every ledger commit of ``partner`` take ``seconds`` (a deferred trigger).

    The commands of a batch are acknowledged before its ledger commits, so a kill
    while the commit sleeps is a crash between the two: the batch must be redone
    and its commands re-sent. Yields a function that ends the slowness early.
    """
    name = f"iw_slow_commit_{uuid.uuid4().hex[:10]}"
    await db.execute(f"""
        CREATE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.partner_id = '{partner}'
               AND current_setting('iw.{name}', true) IS DISTINCT FROM 'slept' THEN
                PERFORM set_config('iw.{name}', 'slept', true);
                PERFORM pg_sleep({seconds});
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON import_worker.ledger
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.{name}();
    """)

    async def end() -> None:
        await db.execute(f"DROP TRIGGER IF EXISTS {name} ON import_worker.ledger")
        await db.execute(f"DROP FUNCTION IF EXISTS public.{name}()")

    try:
        yield end
    finally:
        await end()


def without_time(record: Out) -> dict[str, Any]:
    envelope = dict(record.envelope)
    del envelope["time"]
    return envelope


async def test_sigkill_mid_stream_loses_nothing(
    start_worker: Callable[..., Awaitable[Harness]],
    worker_db: asyncpg.Pool,
    worker_database: str,
    producer: AIOKafkaProducer,
) -> None:
    started = time.monotonic()
    # The worker's sessions notice a dead client within 20 ms, so a SIGKILL aborts the
    # transaction it had open instead of letting PostgreSQL finish it.
    dsn = f"{worker_database}{'&' if '?' in worker_database else '?'}"
    env = {"BATCH_MAX_RECORDS": "200", "DATABASE_URL": f"{dsn}client_connection_check_interval=20"}
    h = await start_worker(run=False, extra_env=env)
    partner = new_partner()
    customer_ids, inputs = await seed(worker_db, partner)
    sim = AgentSimulator(
        partner, customer_ids, rediscovery_rate=0.3, admin_share=0.2, seed=20240611
    )
    events = list(sim.stream(EVENTS))
    topic = h.topics.account_discovered
    landed = await produce(producer, topic, events)
    end = defaultdict(int)
    for meta in landed:
        end[meta.partition] = max(end[meta.partition], meta.offset + 1)

    async def ledger_rows() -> int:
        return await worker_db.fetchval(
            "SELECT count(*) FROM import_worker.ledger WHERE partner_id = $1", partner
        )

    async def committed() -> int:
        return sum((await h.offsets.committed(topic)).values())

    commands = [t for t in h.reader.topics if t.startswith("commands.")]
    async with slow_ledger_commit(worker_db, partner, 2.0) as fast_again:
        h.worker.start()
        await h.reader.wait_for(
            lambda recs: any(r.topic in commands for r in recs), "the first commands", timeout=60
        )
        h.worker.kill()  # 1: commands acknowledged, their ledger rows not yet committed
        await fast_again()  # waits for the killed session's transaction to end
    assert await ledger_rows() == 0, "the first batch's ledger transaction was rolled back"
    assert await committed() == 0

    h.worker.start()
    further = (await ledger_rows()) + len(sim.seen) // 4

    async def progressed() -> bool:
        return await ledger_rows() >= further

    await wait_until(progressed, "more progress", timeout=60, every=0.01)
    h.worker.kill()  # 2: somewhere in the middle
    assert await committed() < EVENTS, "the second kill came after everything was done"

    h.worker.start()
    await h.offsets.wait_past(topic, landed, timeout=90)
    done = await h.offsets.committed(topic)
    assert {p: done[p] for p in end} == end, "every input offset committed, exactly"
    await h.reader.drain()

    # What the worker should have decided: each account's first discovery decides it.
    first: dict[str, tuple[Discovery, str]] = {}
    every: dict[str, list[str]] = defaultdict(list)
    for d in events:
        key = key_of(partner, d.account)
        event_id = json.loads(d.value)["id"]
        first.setdefault(key, (d, event_id))
        every[key].append(event_id)
    assert len(first) == len(sim.seen)
    expected: dict[str, Any] = {}
    for key, (d, _) in first.items():
        view, policies = inputs[d.account.customer_id]
        expected[key] = decide(d.account, view, policies[d.account.account_type])
    imported = {k for k, dec in expected.items() if dec.outcome.value == "imported"}
    assert 0 < len(imported) < len(expected)  # both outcomes are exercised

    assert await ledger_rows() == len(imported)

    mine = [r for r in h.reader.records if r.key and r.key.startswith(f"{partner}:".encode())]
    by_id: dict[str, list[Out]] = defaultdict(list)
    for r in mine:
        by_id[r.envelope["id"]].append(r)
    for copies in by_id.values():  # duplicates are the same message, sent again
        assert len({json.dumps(without_time(c), sort_keys=True) for c in copies}) == 1, copies
        assert len({c.topic for c in copies}) == 1

    decisions: dict[str, set[str]] = defaultdict(set)
    sent: set[str] = set()
    for event_id, copies in by_id.items():
        env = copies[0].envelope
        if copies[0].topic == h.topics.import_decisions:
            decisions[env["subject"]].add(event_id)
        else:
            sent.add(event_id)
            assert env["causationid"] == first[env["subject"]][1]
    assert set(decisions) == set(expected), "every account got a decision"
    for key in expected:
        causes = [first[key][1]] if key in imported else every[key]
        assert decisions[key] == {str(decision_id(key, c)) for c in causes}, key
    wanted = {str(i) for dec in expected.values() for i in dec.command_ids()}
    assert sent == wanted, f"lost {len(wanted - sent)}, unexpected {len(sent - wanted)}"
    for copies in by_id.values():
        if copies[0].topic == h.topics.import_decisions:
            data = copies[0].envelope["data"]
            assert data["command_ids"] == [
                str(i) for i in expected[data["account"]["key"]].command_ids()
            ]

    duplicates = len(mine) - len(by_id)
    assert duplicates > 0, "the batch killed before its ledger commit was re-sent"
    print(
        f"{EVENTS} events, {len(expected)} accounts ({len(imported)} imported), "
        f"{len(sent)} commands, {duplicates} duplicates on the wire, "
        f"{time.monotonic() - started:.1f}s"
    )
