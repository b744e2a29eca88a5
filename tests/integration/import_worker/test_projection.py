"""The worker's projection of policy and customer events: versions guard every write, so
an older event arriving late never overwrites a newer state (docs/contract.md §2)."""

import asyncpg
import pytest

from schemas.enums import AccountType

from .events import (
    account,
    admin_options,
    customer,
    deleted,
    discovered,
    end_user_options,
    new_partner,
    policy,
    removed,
)
from .support import Harness
from .worker import wait_until

pytestmark = pytest.mark.timeout(120)


async def stale_after(h: Harness, entity: str, before: float) -> None:
    """Until the worker has skipped one more stale ``entity`` event than ``before``."""
    sample = f'import_projection_events_total{{entity="{entity}",result="stale"}}'

    async def skipped() -> bool:
        return await h.worker.metric(h.http, sample) >= before + 1

    await wait_until(skipped, f"a stale {entity} event to be skipped")


async def stale(h: Harness, entity: str) -> float:
    return await h.worker.metric(
        h.http, f'import_projection_events_total{{entity="{entity}",result="stale"}}'
    )


async def test_older_customer_event_does_not_overwrite(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    ad = policy(partner, AccountType.ADMINISTRATOR, admin_options())
    await harness.project(worker_db, ad)
    newer = customer(partner, administrator=ad.id, documentation=("itglue", "new"), version=2)
    older = customer(partner, customer_id=newer.id, documentation=("hudu", "old"), version=1)
    before = await stale(harness, "customer")
    await harness.bus.customer(newer)
    await harness.bus.customer(older)  # same key, same partition: applied after the newer
    await stale_after(harness, "customer", before)

    row = await worker_db.fetchrow(
        "SELECT version, doc_provider, doc_organization_id, administrator_policy, removed "
        "FROM import_worker.customers WHERE id = $1",
        newer.id,
    )
    assert tuple(row) == (2, "itglue", "new", ad.id, False)
    decision, commands = await harness.decide(
        discovered(partner, account(newer.id, AccountType.ADMINISTRATOR))
    )
    assert decision.envelope["data"]["outcome"] == "imported"
    docs = [
        c.envelope["data"] for c in commands if c.topic == harness.topics.commands_documentation
    ]
    assert [(d["provider"], d["organization_id"]) for d in docs] == [("itglue", "new")]


async def test_older_policy_event_does_not_overwrite(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    newer = policy(
        partner, AccountType.END_USER, end_user_options(send_welcome_email=True), version=3
    )
    older = policy(
        partner,
        AccountType.END_USER,
        end_user_options(send_welcome_email=False),
        version=2,
        policy_id=newer.id,
    )
    before = await stale(harness, "policy")
    await harness.bus.policy(newer)
    await harness.bus.policy(older)
    await stale_after(harness, "policy", before)
    assert (
        await worker_db.fetchval(
            "SELECT version FROM import_worker.policies WHERE id = $1", newer.id
        )
        == 3
    )

    c = customer(partner, end_user=newer.id)
    await harness.project(worker_db, c)
    decision, commands = await harness.decide(discovered(partner, account(c.id)))
    data = decision.envelope["data"]
    assert (data["policy_id"], data["policy_version"]) == (str(newer.id), 3)
    assert harness.topics.commands_notification in {c.topic for c in commands}


async def test_late_added_event_does_not_resurrect_a_removed_customer(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    added = customer(partner, end_user=eu.id)
    await harness.project(worker_db, eu, added, removed(added, version=2))
    before = await stale(harness, "customer")
    await harness.bus.customer(added)  # redelivered late
    await stale_after(harness, "customer", before)
    row = await worker_db.fetchrow(
        "SELECT version, removed FROM import_worker.customers WHERE id = $1", added.id
    )
    assert tuple(row) == (2, True)

    event = discovered(partner, account(added.id))
    landed = await harness.bus.discovered(event)
    dlq = harness.topics.account_discovered_dlq
    [dead] = await harness.reader.wait_for(
        lambda recs: [
            r for r in recs if r.topic == dlq and r.value == event.model_dump_json().encode()
        ],
        "the removed customer's account in the DLQ",
    )
    assert dead.header("x-error-reason") == "unknown_customer"
    assert int(dead.header("x-original-offset")) == landed.offset


async def test_account_waits_for_a_policy_not_yet_projected(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    """A customer assigned to a policy the worker has not seen must not say no_policy."""
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    c = customer(partner, end_user=eu.id)
    await harness.project(worker_db, c)
    event = discovered(partner, account(c.id))
    await harness.bus.discovered(event)
    retry = harness.worker.retry_topic
    await harness.reader.wait_for(
        lambda recs: [
            r for r in recs if r.topic == retry and r.value == event.model_dump_json().encode()
        ],
        "the account on the retry topic",
    )
    await harness.bus.policy(eu)
    decision, commands = await harness.outcome(event)
    assert decision.envelope["data"]["outcome"] == "imported"
    assert decision.envelope["data"]["policy_id"] == str(eu.id)
    assert len(commands) == 3  # welcome email, SSPR, M365 (no PSA, no documentation)


async def test_deleted_policy_leaves_its_customers_without_one(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    c = customer(partner, end_user=eu.id, psa=("connectwise", "9"))
    await harness.project(worker_db, eu, c)
    await harness.project(worker_db, deleted(eu, version=2))
    # The customer event that unassigns it may come later; until then: no policy.
    decision, commands = await harness.decide(discovered(partner, account(c.id)))
    assert decision.envelope["data"]["outcome"] == "no_policy"
    assert commands == []
    late = policy(partner, AccountType.END_USER, end_user_options(), version=1, policy_id=eu.id)
    before = await stale(harness, "policy")
    await harness.bus.policy(late)  # an old state redelivered: the policy stays deleted
    await stale_after(harness, "policy", before)
    decision, commands = await harness.decide(discovered(partner, account(c.id)))
    assert decision.envelope["data"]["outcome"] == "no_policy"


async def test_an_event_the_database_refuses_does_not_hold_back_later_changes(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    """A customer event PostgreSQL can never store (NUL in a text column: a data error,
    not an outage) is skipped and counted; it used to be retried for ever, so every
    later customer stayed unknown to the worker."""
    partner = new_partner()
    refused = customer(partner, psa=("connectwise", "cw\x001"))
    await harness.bus.customer(refused)
    fine = customer(partner)
    await harness.project(worker_db, fine)  # waits until the later customer is there

    stored = await worker_db.fetchval(
        "SELECT count(*) FROM import_worker.customers WHERE id = $1", refused.id
    )
    assert stored == 0
    sample = 'import_projection_events_total{entity="customer",result="refused"}'
    assert await harness.worker.metric(harness.http, sample) >= 1
