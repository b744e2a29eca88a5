"""The accounts projection on real PostgreSQL, without the broker: any order, any
number of duplicates, the same rows; a 100k-account batch; a record PostgreSQL
cannot store is passed over without losing the rest of its batch."""

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.policy_service.adapters.database import Database
from services.policy_service.adapters.read_model import ReadModelConfig, ReadModelConsumer
from tests.account_events import (
    ADMIN_COMMANDS,
    END_USER_COMMANDS,
    Account,
    decision_event,
    result_event,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def projection(policy_database: str) -> AsyncIterator[ReadModelConsumer]:
    db = Database(policy_database, min_size=1, max_size=4)
    await db.open()
    try:
        yield ReadModelConsumer(
            ReadModelConfig("unused:9092", ("import.decisions", "command.results"), "unused"),
            db,
            CollectorRegistry(),
        )
    finally:
        await db.close()


def history(partner: str, customers: int = 3, per_customer: int = 4) -> list[bytes]:
    """Decisions and results of a few accounts: re-decisions, deferred-then-created,
    failures superseded by later successes, and the reverse."""
    events: list[bytes] = []
    for c in range(customers):
        customer = uuid.UUID(int=c + 1)
        for n in range(per_customer):
            admin = n % 2 == 1
            account = Account(
                partner,
                customer,
                external_id=f"e{c}-{n}",
                username=f"u{c}{n}",
                account_type="administrator" if admin else "end_user",
            )
            at = T0 + timedelta(minutes=c * 10 + n)
            events.append(decision_event(account, outcome="no_policy", at=at, discovery_id="a"))
            types = ADMIN_COMMANDS if admin else END_USER_COMMANDS
            if n != 3:
                events.append(decision_event(account, types, at=at + timedelta(seconds=1),
                                             discovery_id="b"))  # fmt: skip
            for i, kind in enumerate(types):
                late = at + timedelta(seconds=10 + i)
                if (c + n + i) % 3 == 0:
                    events.append(result_event(account, kind, reason="timeout", at=late))
                    events.append(result_event(account, kind, outcome="matched",
                                               at=late + timedelta(seconds=1)))  # fmt: skip
                elif (c + n + i) % 3 == 1:
                    events.append(result_event(account, kind, outcome="deferred", at=late))
                    events.append(result_event(account, kind, reason="vendor_rejected",
                                               at=late + timedelta(seconds=1)))  # fmt: skip
                # else: no result yet (pending)
    return events


async def state(pool: asyncpg.Pool, partner: str) -> dict[str, Any]:
    """The partner's rows, with the partner's id cut out of every key."""
    cut = len(partner)
    accounts = await pool.fetch(
        """SELECT substr(key, $2) AS key, outcome, status, decided_at,
                  jsonb_array_length(command_ids) AS commands
           FROM policy_service.accounts WHERE partner_id = $1 ORDER BY key""",
        partner,
        cut + 1,
    )
    commands = await pool.fetch(
        """SELECT substr(account_key, $2) AS key, command_type, status, outcome, reason,
                  finished_at
           FROM policy_service.account_commands WHERE partner_id = $1 ORDER BY 1, 2""",
        partner,
        cut + 1,
    )
    counts = await pool.fetch(
        """SELECT customer_id, account_type, status, accounts FROM policy_service.account_counts
           WHERE partner_id = $1 AND accounts <> 0 ORDER BY 1, 2, 3""",
        partner,
    )
    return {
        "accounts": [tuple(r) for r in accounts],
        "commands": [tuple(r) for r in commands],
        "counts": [tuple(r) for r in counts],
    }


async def test_any_order_and_any_duplicates_end_in_the_same_rows(
    projection: ReadModelConsumer, db: asyncpg.Pool
) -> None:
    rng = random.Random(20261202)
    reference = f"p-ref-{uuid.uuid4().hex[:8]}"
    for value in history(reference):  # one at a time, in order
        await projection.apply([value])
    expected = await state(db, reference)
    assert {row[2] for row in expected["accounts"]} == {"attention", "pending", "no_policy"}
    assert sum(row[3] for row in expected["counts"]) == 12

    for trial in range(4):
        partner = f"p-{trial}-{uuid.uuid4().hex[:8]}"
        events = history(partner)
        events += rng.sample(events, len(events) // 3)  # redelivered
        rng.shuffle(events)
        at = 0
        while at < len(events):  # batches of random sizes
            size = rng.randint(1, 12)
            await projection.apply(events[at : at + size])
            at += size
        got = await state(db, partner)
        assert got == expected, trial


async def test_counts_follow_every_move(projection: ReadModelConsumer, db: asyncpg.Pool) -> None:
    partner = f"p-{uuid.uuid4().hex[:12]}"
    account = Account(partner, uuid.uuid4())
    await projection.apply([decision_event(account, ("psa.contact.link",), at=T0)])
    steps = [
        (result_event(account, "psa.contact.link", reason="timeout", at=T0), "attention"),
        (
            result_event(account, "psa.contact.link", outcome="matched", at=T0 + timedelta(1)),
            "done",
        ),
    ]
    for value, status in steps:
        await projection.apply([value, value])
        counts = await db.fetch(
            "SELECT status, accounts FROM policy_service.account_counts"
            " WHERE partner_id = $1 AND accounts <> 0",
            partner,
        )
        assert [tuple(r) for r in counts] == [(status, 1)]


async def test_a_batch_of_100k_accounts(projection: ReadModelConsumer, db: asyncpg.Pool) -> None:
    partner = f"p-big-{uuid.uuid4().hex[:8]}"
    customers = [uuid.uuid4() for _ in range(20)]
    accounts = [
        Account(partner, customers[i % 20], external_id=str(i), username=f"user{i}")
        for i in range(100_000)
    ]
    decisions = [decision_event(a, ("psa.contact.link",), at=T0) for a in accounts]
    await projection.apply(decisions)
    results = [
        result_event(a, "psa.contact.link", outcome="matched")
        if i % 10
        else result_event(a, "psa.contact.link", reason="ambiguous_match")
        for i, a in enumerate(accounts)
    ]
    await projection.apply(results + decisions[:1000])  # with redeliveries
    counts = await db.fetch(
        "SELECT status, sum(accounts)::int AS n FROM policy_service.account_counts"
        " WHERE partner_id = $1 GROUP BY status ORDER BY status",
        partner,
    )
    assert {r["status"]: r["n"] for r in counts if r["n"]} == {
        "attention": 10_000,
        "done": 90_000,
    }
    assert (
        await db.fetchval(
            "SELECT count(*) FROM policy_service.account_commands WHERE partner_id = $1", partner
        )
        == 100_000
    )


async def test_a_record_postgresql_cannot_store_is_passed_over_alone(
    projection: ReadModelConsumer, db: asyncpg.Pool
) -> None:
    partner = f"p-{uuid.uuid4().hex[:12]}"
    fine = [Account(partner, uuid.uuid4(), username=f"fine{i}") for i in range(9)]
    bad = Account(partner, uuid.uuid4(), username="nul\x00here")  # valid JSON, no text value
    values = [decision_event(a) for a in fine[:5]] + [decision_event(bad)]
    values += [decision_event(a) for a in fine[5:]]
    values.append(b"{not json")
    await projection.apply(values)
    stored = await db.fetch(
        "SELECT username FROM policy_service.accounts WHERE partner_id = $1 ORDER BY 1", partner
    )
    assert [r["username"] for r in stored] == sorted(a.username for a in fine)
    refused = projection.metrics.records.labels("refused")._value.get()
    unreadable = projection.metrics.records.labels("unreadable")._value.get()
    assert (refused, unreadable) == (1, 1)
