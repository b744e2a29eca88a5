"""``/v1/accounts``: the read model of import.decisions and command.results, through
the real broker, the service's own consumer and the API (docs/contract.md §8)."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas.ids import command_id
from schemas.topics import TopicNames
from tests.account_events import ADMIN_COMMANDS, Account, decision_event, result_event
from tests.served_app import served_policy_service

from .support import Api, Tenant, assert_problem, settings_for

pytestmark = pytest.mark.integration
TOPICS = TopicNames()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def projecting_url(policy_database: str, kafka_bootstrap: str) -> Iterator[str]:
    """A service that projects import.decisions and command.results (a group of its own)."""
    settings = settings_for(
        policy_database,
        kafka_bootstrap,
        relay_enabled=False,
        results_consumer_enabled=True,
        results_group_id=f"accounts-api-{uuid.uuid4().hex[:8]}",
    )
    with served_policy_service(settings) as url:
        yield url


@pytest.fixture(scope="module")
async def bus(kafka_bootstrap: str) -> AsyncIterator[Callable[[str, bytes, str], Awaitable[None]]]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()

    async def send(topic: str, value: bytes, key: str) -> None:
        await producer.send_and_wait(topic, value, key=key.encode())

    try:
        yield send
    finally:
        await producer.stop()


Send = Callable[[str, bytes, str], Awaitable[None]]


@pytest.fixture
def partner(http: aiohttp.ClientSession, projecting_url: str) -> Tenant:
    return Tenant(Api(http, projecting_url))


async def decide(bus: Send, account: Account, *args: Any, **kw: Any) -> None:
    await bus(TOPICS.import_decisions, decision_event(account, *args, **kw), account.key)


async def report(bus: Send, account: Account, command_type: str, **kw: Any) -> None:
    await bus(TOPICS.command_results, result_event(account, command_type, **kw), account.key)


async def until(
    tenant: Tenant, path: str, check: Callable[[Any], bool], timeout: float = 30
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        reply = await tenant.call("GET", path, role="read_only")
        if reply.status == 200 and check(reply.body):
            return reply.body
        assert time.monotonic() < deadline, (path, reply.status, reply.body)
        await asyncio.sleep(0.1)


def path_of(account: Account) -> str:
    return "/v1/accounts/" + quote(account.key, safe="")


async def test_an_account_shows_its_decision_and_every_commands_latest_result(
    partner: Tenant, bus: Send
) -> None:
    customer = uuid.uuid4()
    policy = uuid.uuid4()
    account = Account(partner.partner_id, customer, username="jdoe", email="Jane.Doe@Example.com")
    note = {
        "option": "psa.create_if_missing",
        "reason": "shared_psa_company",
        "detail": "several customers map to connectwise company 1001; contacts are linked",
    }
    await decide(bus, account, policy_id=policy, policy_version=3, notes=[note], at=T0)
    body = await until(partner, path_of(account), lambda b: b["status"] == "pending")
    assert body["decision"] == {
        "outcome": "imported",
        "policy_id": str(policy),
        "policy_version": 3,
        "notes": [note],
        "decided_at": "2026-11-02T09:00:00Z",
    }
    assert [c["type"] for c in body["commands"]] == [
        "documentation.password.link",
        "psa.contact.link",
        "notification.welcome_email.send",
        "identity.self_service_reset.enable",
    ]
    assert {c["status"] for c in body["commands"]} == {"pending"}
    assert body["username"] == "jdoe"
    assert body["email"] == "Jane.Doe@Example.com"

    link = {"system": "connectwise", "kind": "contact", "id": "4711", "url": "https://cw/4711"}
    await report(bus, account, "psa.contact.link", outcome="matched", refs=[link], at=T0)
    await report(bus, account, "documentation.password.link", outcome="deferred",
                 provider="itglue", at=T0)  # fmt: skip
    for kind in ("notification.welcome_email.send", "identity.self_service_reset.enable"):
        await report(bus, account, kind, outcome="sent", provider=None, at=T0)
    body = await until(partner, path_of(account), lambda b: b["status"] == "done")
    psa = next(c for c in body["commands"] if c["type"] == "psa.contact.link")
    assert psa["id"] == str(command_id(account.key, "psa.contact.link"))
    assert (psa["status"], psa["outcome"], psa["reason"]) == ("succeeded", "matched", None)
    assert psa["provider"] == "connectwise"
    assert psa["refs"] == [link]

    # The deferred entry is created later: a second result of the same command wins.
    await report(bus, account, "documentation.password.link", outcome="created",
                 provider="itglue", at=T0 + timedelta(minutes=5))  # fmt: skip
    # An older failure arriving late changes nothing.
    await report(bus, account, "psa.contact.link", reason="timeout", at=T0 - timedelta(hours=1))
    body = await until(
        partner,
        path_of(account),
        lambda b: any(c["outcome"] == "created" for c in b["commands"]),
    )
    assert body["status"] == "done"
    assert next(c for c in body["commands"] if c["type"] == "psa.contact.link")["outcome"] == (
        "matched"
    )

    # A failure after that: the account needs attention, and says why.
    await report(bus, account, "psa.contact.link", reason="integration_auth",
                 detail="401 Unauthorized", at=T0 + timedelta(hours=1))  # fmt: skip
    body = await until(partner, path_of(account), lambda b: b["status"] == "attention")
    psa = next(c for c in body["commands"] if c["type"] == "psa.contact.link")
    assert (psa["status"], psa["reason"], psa["detail"]) == (
        "failed",
        "integration_auth",
        "401 Unauthorized",
    )


async def test_a_result_may_arrive_before_its_decision_and_duplicates_change_nothing(
    partner: Tenant, bus: Send
) -> None:
    account = Account(partner.partner_id, uuid.uuid4(), account_type="administrator")
    for _ in range(2):
        await report(bus, account, "rotation.enroll", outcome="enrolled", provider=None, at=T0)
        await report(bus, account, "documentation.password.link", reason="ambiguous_match",
                     provider="hudu", at=T0)  # fmt: skip
    await asyncio.sleep(0.5)
    assert (await partner.call("GET", path_of(account))).status == 404  # not decided yet
    for _ in range(3):
        await decide(bus, account, ADMIN_COMMANDS, at=T0, discovery_id="d-1")
    body = await until(partner, path_of(account), lambda b: b["status"] == "attention")
    assert [(c["type"], c["status"]) for c in body["commands"]] == [
        ("documentation.password.link", "failed"),
        ("rotation.enroll", "succeeded"),
    ]
    page = await until(
        partner, "/v1/accounts", lambda b: b["counts"]["attention"] == 1 and len(b["items"]) == 1
    )
    assert page["counts"] == {"done": 0, "pending": 0, "attention": 1, "no_policy": 0}


async def test_no_policy_then_imported_and_a_late_no_policy_does_not_win(
    partner: Tenant, bus: Send
) -> None:
    account = Account(partner.partner_id, uuid.uuid4())
    await decide(bus, account, outcome="no_policy", at=T0)
    body = await until(partner, path_of(account), lambda b: b["status"] == "no_policy")
    assert body["commands"] == []
    assert body["decision"]["policy_id"] is None
    await decide(bus, account, ("psa.contact.link",), at=T0 + timedelta(minutes=1))
    await decide(bus, account, outcome="no_policy", at=T0 + timedelta(minutes=2))  # stale
    await report(bus, account, "psa.contact.link", outcome="created")
    body = await until(partner, path_of(account), lambda b: b["status"] == "done")
    assert body["decision"]["outcome"] == "imported"
    page = await until(partner, "/v1/accounts", lambda b: b["counts"]["done"] == 1)
    assert page["counts"] == {"done": 1, "pending": 0, "attention": 0, "no_policy": 0}


async def test_filters_paging_newest_first_and_counts(partner: Tenant, bus: Send) -> None:
    north, south = uuid.uuid4(), uuid.uuid4()
    accounts = [
        Account(
            partner.partner_id,
            north if i % 2 else south,
            username=f"user{i:02d}",
            display_name=f"Person {i:02d}" if i != 5 else "Zoë Ångström",
            email=f"user{i:02d}@{'north' if i % 2 else 'south'}.example",
            account_type="administrator" if i % 3 == 0 else "end_user",
        )
        for i in range(12)
    ]
    for i, account in enumerate(accounts):
        types = ADMIN_COMMANDS if account.account_type == "administrator" else ("psa.contact.link",)
        await decide(bus, account, types, at=T0 + timedelta(minutes=i))
    for account in accounts[:4]:  # the four oldest: done, or needing attention
        kind = "rotation.enroll" if account.account_type == "administrator" else "psa.contact.link"
        await report(bus, account, kind, outcome="enrolled")
        if account.account_type == "administrator":
            await report(bus, account, "documentation.password.link", reason="vendor_rejected")
    page = await until(partner, "/v1/accounts", lambda b: sum(b["counts"].values()) == 12)
    await until(partner, "/v1/accounts", lambda b: b["counts"]["pending"] == 8)
    page = await partner.ok("GET", "/v1/accounts?limit=5", role="technician")
    assert [a["username"] for a in page["items"]] == ["user11", "user10", "user09", "user08",
                                                      "user07"]  # fmt: skip
    seen = [a["username"] for a in page["items"]]
    while page["next_cursor"]:
        page = await partner.ok("GET", f"/v1/accounts?limit=5&cursor={page['next_cursor']}")
        seen += [a["username"] for a in page["items"]]
    assert seen == [f"user{i:02d}" for i in reversed(range(12))]

    admins, ends = 4, 8  # i = 0, 3, 6, 9
    assert page["counts"] == {"done": 2, "pending": 8, "attention": 2, "no_policy": 0}

    async def names(query: str) -> list[str]:
        body = await partner.ok("GET", "/v1/accounts?" + query)
        return [a["username"] for a in body["items"]]

    assert await names(f"customer_id={north}") == [f"user{i:02d}" for i in (11, 9, 7, 5, 3, 1)]
    assert len(await names("account_type=administrator")) == admins
    assert len(await names("account_type=end_user")) == ends
    assert await names("status=attention") == ["user03", "user00"]
    assert await names("status=done") == ["user02", "user01"]
    assert await names("status=no_policy") == []
    assert await names(f"status=pending&customer_id={south}&account_type=end_user") == [
        "user10", "user08", "user04"]  # fmt: skip
    assert await names("q=ZOË") == ["user05"]  # display name, any case
    assert await names("q=07%40north") == ["user07"]  # email
    assert await names("q=user1") == ["user11", "user10"]
    assert await names("q=%25") == []  # LIKE's wildcards are plain characters
    assert await names("q=_") == []
    counted = await partner.ok("GET", f"/v1/accounts?customer_id={north}&status=done&q=zzz")
    assert counted["items"] == []
    assert counted["counts"] == {"done": 1, "pending": 4, "attention": 1, "no_policy": 0}


async def test_another_partners_accounts_are_invisible(
    partner: Tenant, bus: Send, http: aiohttp.ClientSession, projecting_url: str
) -> None:
    mine = Account(partner.partner_id, uuid.uuid4(), directory="local", external_id="S-1-5/21")
    await decide(bus, mine)
    await until(partner, path_of(mine), lambda b: True)
    other = Tenant(Api(http, projecting_url))
    assert_problem(await other.call("GET", path_of(mine)), 404)
    page = await other.ok("GET", "/v1/accounts")
    assert page["items"] == []
    assert page["counts"] == {"done": 0, "pending": 0, "attention": 0, "no_policy": 0}
    for role in ("super", "primary", "manager", "technician", "read_only"):
        assert (await partner.call("GET", path_of(mine), role=role)).status == 200
    assert_problem(await partner.call("GET", path_of(mine), role="auditor"), 403)
    assert_problem(await partner.call("GET", "/v1/accounts", role="auditor"), 403)
    # An event claiming an account of another partner is not projected at all.
    forged = Account(other.partner_id, uuid.uuid4())
    await bus(TOPICS.import_decisions, _claimed_by(decision_event(forged), partner.partner_id),
              forged.key)  # fmt: skip
    marker = Account(partner.partner_id, uuid.uuid4(), username="after-the-forgery")
    await decide(bus, marker)
    await until(partner, path_of(marker), lambda b: True)
    assert (await other.call("GET", path_of(forged))).status == 404
    assert (await partner.call("GET", path_of(forged))).status == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("customer_id=nope", "customer_id"),
        ("status=finished", "status"),
        ("account_type=robot", "account_type"),
        ("q=" + "x" * 201, "q"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("cursor=", "cursor"),
    ],
)
async def test_bad_filters_are_400_problems(partner: Tenant, query: str, field: str) -> None:
    problem = assert_problem(await partner.call("GET", "/v1/accounts?" + query), 400)
    assert [e["field"] for e in problem["errors"]] == [field]


def _claimed_by(value: bytes, partner_id: str) -> bytes:
    event = json.loads(value)
    event["partnerid"] = partner_id
    return json.dumps(event).encode()
