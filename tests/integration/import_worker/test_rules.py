"""docs/contract.md §3 end to end: policy and customer events in, commands and decisions
out, through a real ``import-worker run`` process, the broker and PostgreSQL."""

import json
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from schemas.commands import (
    Command,
    DocumentationPasswordLink,
    M365PasswordSyncEnable,
    PsaContactLink,
    RotationEnroll,
    SelfServiceResetEnable,
    VaultPasswordStore,
    WelcomeEmailSend,
)
from schemas.decision import DecisionRecorded
from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType, Directory
from schemas.envelope import CONTENT_TYPE, CausedEvent, CloudEvent
from schemas.ids import command_id, decision_id

from .events import (
    account,
    admin_options,
    customer,
    discovered,
    end_user_options,
    key_of,
    new_partner,
    policy,
)
from .support import Harness, Out

pytestmark = pytest.mark.timeout(120)

MODELS: dict[str, type[Command]] = {
    m.TYPE: m
    for m in (
        DocumentationPasswordLink,
        PsaContactLink,
        WelcomeEmailSend,
        SelfServiceResetEnable,
        M365PasswordSyncEnable,
        VaultPasswordStore,
        RotationEnroll,
    )
}


def check_envelope(h: Harness, out: Out, event: CloudEvent[DiscoveredAccount]) -> None:
    """The fields every command and decision must carry (docs/contract.md §2)."""
    key = key_of(event.partnerid, event.data)
    env = out.envelope
    assert out.key == key.encode()
    assert out.headers["content-type"] == CONTENT_TYPE.encode()
    assert env["specversion"] == "1.0"
    assert env["source"] == "/import-worker"
    assert env["subject"] == key
    assert env["partnerid"] == event.partnerid
    assert env["datacontenttype"] == "application/json"
    assert env["causationid"] == event.id
    assert env["correlationid"] == event.id  # the agent sent none
    assert datetime.fromisoformat(env["time"]).tzinfo is not None
    if env["type"] in MODELS:
        model = MODELS[env["type"]]
        assert out.topic == h.topics.channel(model.CHANNEL)
        assert env["id"] == str(command_id(key, model.TYPE))
        CausedEvent[model].model_validate_json(out.value)  # type: ignore[valid-type]
        data = env["data"]
        assert data["account"]["key"] == key
        assert data["account"]["external_id"] == event.data.external_id
        assert data["account"]["username"] == event.data.username
    else:
        assert out.topic == h.topics.import_decisions
        assert env["type"] == "import.decision.recorded"
        assert env["id"] == str(decision_id(key, event.id))
        CausedEvent[DecisionRecorded].model_validate_json(out.value)


async def run(
    h: Harness, event: CloudEvent[DiscoveredAccount]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Discover, check every envelope; the decision's data and the commands' data by type."""
    decision, commands = await h.decide(event)
    for out in [decision, *commands]:
        check_envelope(h, out, event)
    data = decision.envelope["data"]
    ids = data["command_ids"]
    assert sorted(ids) == sorted(c.envelope["id"] for c in commands), "each command once"
    commands.sort(key=lambda c: ids.index(c.envelope["id"]))
    by_type = {c.envelope["type"]: c.envelope["data"] for c in commands}
    return data, by_type


def notes(decision: dict[str, Any]) -> set[tuple[str, str]]:
    return {(n["option"], n["reason"]) for n in decision["notes"]}


async def test_end_user_with_every_option(harness: Harness, worker_db: asyncpg.Pool) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    c = customer(partner, end_user=eu.id, psa=("connectwise", "77"), documentation=("hudu", "o-1"))
    await harness.project(worker_db, eu, c)

    ad_event = discovered(partner, account(c.id, directory=Directory.ACTIVE_DIRECTORY))
    decision, commands = await run(harness, ad_event)
    order = [
        "documentation.password.link",
        "psa.contact.link",
        "notification.welcome_email.send",
        "identity.self_service_reset.enable",
        "identity.m365_password_sync.enable",
    ]
    key = key_of(partner, ad_event.data)
    assert decision["command_ids"] == [str(command_id(key, t)) for t in order]
    assert list(commands) == order
    assert decision["outcome"] == "imported"
    assert decision["policy_id"] == str(eu.id)
    assert decision["policy_version"] == 1
    assert decision["notes"] == []
    doc, psa = commands["documentation.password.link"], commands["psa.contact.link"]
    assert (doc["provider"], doc["organization_id"]) == ("hudu", "o-1")
    assert doc["create_if_missing"] is True
    assert doc["sync_back"] is True
    assert (psa["provider"], psa["company_id"], psa["create_if_missing"]) == (
        "connectwise",
        "77",
        True,
    )
    assert commands["notification.welcome_email.send"]["email"] == ad_event.data.email
    for data in commands.values():
        assert (data["policy_id"], data["policy_version"]) == (str(eu.id), 1)

    entra = discovered(partner, account(c.id, directory=Directory.ENTRA_ID))
    decision, commands = await run(harness, entra)
    assert list(commands) == order[:4]
    assert notes(decision) == {("sync_password_to_m365", "already_in_m365")}


async def test_administrator_documentation_link_suppresses_vault(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    ad = policy(partner, AccountType.ADMINISTRATOR, admin_options())
    documented = customer(partner, administrator=ad.id, documentation=("itglue", "org-9"))
    bare = customer(partner, administrator=ad.id)
    await harness.project(worker_db, ad, documented, bare)

    decision, commands = await run(
        harness, discovered(partner, account(documented.id, AccountType.ADMINISTRATOR))
    )
    assert list(commands) == ["documentation.password.link", "rotation.enroll"]
    doc = commands["documentation.password.link"]
    assert (doc["provider"], doc["organization_id"], doc["create_if_missing"]) == (
        "itglue",
        "org-9",
        False,
    )
    assert notes(decision) == {("save_password_in_vault", "password_in_documentation")}

    decision, commands = await run(
        harness, discovered(partner, account(bare.id, AccountType.ADMINISTRATOR))
    )
    assert list(commands) == ["vault.password.store", "rotation.enroll"]
    assert notes(decision) == {("documentation.match", "no_documentation_organization")}
    assert decision["policy_id"] == str(ad.id)


async def test_shared_psa_company_never_creates_contacts(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    one = customer(partner, end_user=eu.id, psa=("autotask", "shared-1"))
    two = customer(partner, end_user=eu.id, psa=("autotask", "shared-1"))
    await harness.project(worker_db, eu, one, two)

    decision, commands = await run(harness, discovered(partner, account(one.id)))
    psa = commands["psa.contact.link"]
    assert (psa["provider"], psa["company_id"], psa["create_if_missing"]) == (
        "autotask",
        "shared-1",
        False,
    )
    assert ("psa.create_if_missing", "shared_psa_company") in notes(decision)
    assert "documentation.password.link" not in commands  # no documentation organisation
    assert ("documentation.match", "no_documentation_organization") in notes(decision)


async def test_no_policy_is_recorded_and_decided_afresh(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    ad = policy(partner, AccountType.ADMINISTRATOR, admin_options())
    c = customer(partner, administrator=ad.id, psa=("halo", "5"))  # no end-user policy
    await harness.project(worker_db, ad, c)

    data = account(c.id)
    first = discovered(partner, data)
    decision, commands = await run(harness, first)
    assert commands == {}
    assert decision["outcome"] == "no_policy"
    assert (decision["policy_id"], decision["policy_version"]) == (None, None)
    assert decision["command_ids"] == []
    assert decision["notes"] == []

    again = discovered(partner, data)
    decision, commands = await run(harness, again)
    assert (decision["outcome"], commands) == ("no_policy", {})
    assert await ledger_count(worker_db, partner) == 0

    # Once the customer has an end-user policy, the same account is imported.
    eu = policy(partner, AccountType.END_USER, end_user_options(send_welcome_email=False))
    assigned = customer(
        partner, customer_id=c.id, end_user=eu.id, administrator=ad.id, psa=("halo", "5"), version=2
    )
    await harness.project(worker_db, eu, assigned)
    decision, commands = await run(harness, discovered(partner, data))
    assert (decision["outcome"], decision["policy_id"]) == ("imported", str(eu.id))
    assert set(commands) == {
        "psa.contact.link",
        "identity.self_service_reset.enable",
        "identity.m365_password_sync.enable",
    }

    # Imported once, it stays imported: losing the policy later is no new decision.
    await harness.project(worker_db, customer(partner, customer_id=c.id, version=3))
    late = discovered(partner, data)
    landed = await harness.bus.discovered(late)
    await harness.offsets.wait_past(harness.topics.account_discovered, [landed])
    await harness.reader.drain()
    assert harness.reader.caused_by(late.id) == []
    assert await ledger_count(worker_db, partner) == 1


async def ledger_count(db: asyncpg.Pool, partner: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM import_worker.ledger WHERE partner_id = $1", partner
    )
    return count


async def test_rediscovery_sends_nothing_new(harness: Harness, worker_db: asyncpg.Pool) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    c = customer(partner, end_user=eu.id, documentation=("itglue", "1"))
    await harness.project(worker_db, eu, c)
    data = account(c.id, directory=Directory.LOCAL, email=None)
    first = discovered(partner, data)
    decision, commands = await run(harness, first)
    assert commands["notification.welcome_email.send"]["email"] is None
    assert "identity.m365_password_sync.enable" in commands  # local accounts are synced

    later = [discovered(partner, data.model_copy(update={"username": "renamed"})) for _ in range(3)]
    landed = [await harness.bus.discovered(e) for e in later]
    await harness.offsets.wait_past(harness.topics.account_discovered, landed)
    await harness.reader.drain()
    for e in later:
        assert harness.reader.caused_by(e.id) == []
    key = key_of(partner, data)
    rows = await worker_db.fetch(
        "SELECT decision_id, policy_id, policy_version FROM import_worker.ledger "
        "WHERE account_key = $1",
        key,
    )
    assert [tuple(r) for r in rows] == [(decision_id(key, first.id), eu.id, 1)]
    assert decision["outcome"] == "imported"


async def test_health_readiness_and_metrics(harness: Harness) -> None:
    status, body = await harness.worker.get(harness.http, "/healthz")
    assert status == 200, body
    status, body = await harness.worker.get(harness.http, "/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"]["database"] is True
    status, body = await harness.worker.get(harness.http, "/metrics")
    assert status == 200
    assert "import_events_total" in body
    assert await harness.worker.metric(harness.http, 'import_events_total{outcome="imported"}') >= 1
