"""Events on the bus through the transactional outbox (docs/contract.md §2)."""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from jsonschema import Draft202012Validator, FormatChecker

import schemas
from schemas.topics import TopicNames
from services.infra.devstack import LocalBroker
from services.infra.devstack.databases import create_database, drop_database
from services.infra.migrations import migrate
from services.policy_service.bootstrap import build_app
from tests.served_app import ServedApp

from .support import (
    MIGRATIONS,
    SCHEMA,
    Api,
    Event,
    Tenant,
    collect_events,
    settings_for,
    versions_by_key,
)

POLICY_TOPIC, CUSTOMER_TOPIC = "policy.events", "customer.events"
CLOUDEVENTS_JSON = b"application/cloudevents+json"


@cache
def validator(event_type: str) -> Draft202012Validator:
    path = Path(schemas.__file__).parent / "json" / f"{event_type}.json"
    return Draft202012Validator(json.loads(path.read_text()), format_checker=FormatChecker())


def check_envelope(event: Event, partner_id: str) -> None:
    validator(event.type).validate(event.envelope)
    assert event.headers["content-type"] == CLOUDEVENTS_JSON
    assert event.key == event.envelope["subject"] == event.data["id"]
    assert event.envelope["partnerid"] == event.data["partner_id"] == partner_id


def unique_count(expected: dict[str, int]) -> Callable[[list[Event]], bool]:
    """Until every key has at least ``expected[key]`` distinct events."""

    def done(events: list[Event]) -> bool:
        got = Counter(key for key, _ in {(e.key, e.id) for e in events})
        return all(got[key] >= n for key, n in expected.items())

    return done


async def test_every_change_is_published_with_full_state(
    tenant: Tenant, kafka_bootstrap: str, db: asyncpg.Pool
) -> None:
    alice, bob = {"sub": "alice"}, {"sub": "bob"}
    policy = await tenant.create_policy("end_user", is_default=True)
    customer = await tenant.ok("POST", "/v1/customers", 201, json_body={"name": "Contoso"}, **bob)
    await tenant.ok(
        "PATCH", f"/v1/import-policies/{policy['id']}", json_body={"description": "d"}, **alice
    )
    admin = await tenant.ok(
        "POST",
        "/v1/import-policies",
        201,
        json_body={"account_type": "administrator", "name": "A", "customer_ids": [customer["id"]]},
        **alice,
    )
    await tenant.ok("DELETE", f"/v1/import-policies/{policy['id']}", 204, **alice)
    await tenant.ok("DELETE", f"/v1/customers/{customer['id']}", 204, **bob)
    final_admin = await tenant.policy(admin["id"])

    p, a, c = policy["id"], admin["id"], customer["id"]
    policy_events = await collect_events(
        kafka_bootstrap, POLICY_TOPIC, {p, a}, unique_count({p: 4, a: 2})
    )
    customer_events = await collect_events(
        kafka_bootstrap, CUSTOMER_TOPIC, {c}, unique_count({c: 4})
    )
    for event in policy_events + customer_events:
        check_envelope(event, tenant.partner_id)

    assert versions_by_key(policy_events) == {p: [1, 2, 3, 4], a: [1, 2]}
    assert versions_by_key(customer_events) == {c: [1, 2, 3, 4]}
    by_key: dict[str, list[Event]] = {}
    for event in {e.id: e for e in policy_events + customer_events}.values():
        by_key.setdefault(event.key, []).append(event)
    assert [e.type for e in by_key[p]] == [
        "import_policy.created",
        "import_policy.updated",
        "import_policy.updated",
        "import_policy.deleted",
    ]
    assert [e.data["changed_by"] for e in by_key[p]] == ["user-manager", "bob", "alice", "alice"]
    assert [e.type for e in by_key[c]] == [
        "customer.added",
        "customer.updated",
        "customer.updated",
        "customer.removed",
    ]
    assert [e.data["changed_by"] for e in by_key[c]] == ["bob", "alice", "alice", "bob"]
    # customer.added shows the default it was given; the policy event shows the customer.
    assert by_key[c][0].data["policy_ids"] == {"end_user": p, "administrator": None}
    assert by_key[p][1].data["customer_ids"] == [c]
    assert by_key[c][2].data["policy_ids"] == {"end_user": None, "administrator": a}
    # The last event of a live aggregate is its full current state.
    last_admin = dict(by_key[a][-1].data)
    assert last_admin.pop("partner_id") == tenant.partner_id
    assert last_admin.pop("changed_by") == "bob"
    assert last_admin == final_admin

    rows = await db.fetch(
        "SELECT key, published_at FROM policy_service.outbox WHERE key = ANY($1::text[])",
        [p, a, c],
    )
    assert len(rows) == 4 + 2 + 4
    assert all(r["published_at"] is not None for r in rows)


def _late_event(partner_id: str) -> tuple[str, bytes]:
    """An ``import_policy.created`` envelope, written by hand as the service would."""
    now = datetime.now(UTC).isoformat()
    policy_id = str(uuid.uuid4())
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/policy-service",
        "type": "import_policy.created",
        "time": now,
        "subject": policy_id,
        "datacontenttype": "application/json",
        "partnerid": partner_id,
        "data": {
            "id": policy_id,
            "partner_id": partner_id,
            "account_type": "administrator",
            "name": "Written by a slow transaction",
            "description": "",
            "is_default": False,
            "customer_ids": [],
            "options": {
                "save_password_in_vault": True,
                "documentation": {"match": False, "create_if_missing": False},
                "enable_password_rotation": False,
            },
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "changed_by": "slow-writer",
        },
    }
    return policy_id, json.dumps(envelope).encode()


async def test_a_late_commit_is_neither_skipped_nor_blocks_loss(
    tenant: Tenant, kafka_bootstrap: str, policy_database: str, db: asyncpg.Pool
) -> None:
    key_a, value_a = _late_event(tenant.partner_id)
    conn = await asyncpg.connect(policy_database)
    try:
        tx = conn.transaction()
        await tx.start()
        row_a = await conn.fetchval(
            "INSERT INTO policy_service.outbox (topic, key, value, headers)"
            " VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
            POLICY_TOPIC,
            key_a,
            value_a,
            json.dumps({"content-type": "application/cloudevents+json"}),
        )
        policy_b = await tenant.create_policy()  # commits while A is still open
        row_b = await db.fetchval(
            "SELECT max(id) FROM policy_service.outbox WHERE key = $1", policy_b["id"]
        )
        assert row_b > row_a  # B sits after A in id order but commits first: the trap
        # Nothing to poll for: give a relay that reads "id > last published" the time
        # (ten polls) to publish B and move past A before A commits.
        await asyncio.sleep(0.5)
        await tx.commit()
    finally:
        await conn.close()

    events = await collect_events(
        kafka_bootstrap,
        POLICY_TOPIC,
        {key_a, policy_b["id"]},
        unique_count({key_a: 1, policy_b["id"]: 1}),
    )
    for event in events:
        check_envelope(event, tenant.partner_id)
    assert {e.id for e in events if e.key == key_a} == {json.loads(value_a)["id"]}
    assert [e.type for e in events if e.key == policy_b["id"]] == ["import_policy.created"]
    published = await db.fetchval(
        "SELECT count(*) FROM policy_service.outbox"
        " WHERE id = ANY($1::bigint[]) AND published_at IS NOT NULL",
        [row_a, row_b],
    )
    assert published == 2


async def _poll(check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def outage_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own: one relay per database, and the session's holds that lock."""
    name = f"outage_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(database_url, name)
    await migrate(dsn, SCHEMA, MIGRATIONS)
    yield dsn
    await drop_database(database_url, name)


async def test_a_broker_outage_delays_events_never_loses_them(
    outage_database: str, tmp_path: Path
) -> None:
    broker = LocalBroker(log_path=tmp_path / "tansu.log")
    await asyncio.to_thread(broker.start)
    settings = settings_for(outage_database, broker.bootstrap, kafka_request_timeout_ms=2000)
    served = await asyncio.to_thread(ServedApp(lambda: build_app(settings, TopicNames())).start)
    conn = await asyncpg.connect(outage_database)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, served.base_url)
            tenant = Tenant(api)

            async def backlog() -> int:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL"
                    )
                )

            async def drained() -> bool:
                return await backlog() == 0

            before = await tenant.create_policy()  # the relay works before the outage
            await collect_events(broker.bootstrap, POLICY_TOPIC, {before["id"]}, any)
            await _poll(drained)

            await asyncio.to_thread(broker.stop)

            async def broker_unready() -> bool:
                reply = await api.call("GET", "/readyz")
                return reply.status == 503 and reply.body["checks"]["broker"] is False

            await _poll(broker_unready)
            sizes = [0]
            policy = await tenant.create_policy("end_user", is_default=True)
            sizes.append(await backlog())
            customers = []
            for _ in range(4):
                customers.append((await tenant.add_customer())["id"])
                sizes.append(await backlog())
            await tenant.ok(
                "PATCH", f"/v1/import-policies/{policy['id']}", json_body={"description": "x"}
            )
            sizes.append(await backlog())
            await tenant.create_policy("administrator", customer_ids=customers[:2])
            sizes.append(await backlog())
            await tenant.ok("DELETE", f"/v1/customers/{customers[0]}", 204)
            sizes.append(await backlog())
            assert sizes == sorted(set(sizes)), sizes  # grows with every change
            rows = await conn.fetch(
                "SELECT topic, key, value FROM policy_service.outbox"
                " WHERE published_at IS NULL ORDER BY id"
            )
            assert len(rows) == sizes[-1] > len(customers)

            await asyncio.to_thread(broker.start)  # same port, empty: the relay makes topics

            async def ready() -> bool:
                return (await api.call("GET", "/readyz")).status == 200

            await _poll(ready)
            for topic in (POLICY_TOPIC, CUSTOMER_TOPIC):
                pending = [r for r in rows if r["topic"] == topic]
                ids = {json.loads(r["value"])["id"] for r in pending}
                assert len(ids) == len(pending)
                events = await collect_events(
                    broker.bootstrap,
                    topic,
                    {r["key"] for r in pending},
                    lambda got, ids=ids: ids <= {e.id for e in got},
                    timeout=60,
                )
                # Every row arrives, counted by CloudEvents id. Delivery is at least once: a
                # batch the broker half took is sent again, as identical copies.
                assert {e.id for e in events} == ids
                for copies in _by_id(events).values():
                    assert all(c.envelope == copies[0].envelope for c in copies)
                for key, versions in versions_by_key(events).items():
                    assert versions == sorted(set(versions)), (key, versions)
                for event in events:
                    check_envelope(event, tenant.partner_id)
            await _poll(drained)
    finally:
        await conn.close()
        await asyncio.to_thread(served.stop)
        await asyncio.to_thread(broker.stop)


def _by_id(events: list[Event]) -> dict[str, list[Event]]:
    copies: dict[str, list[Event]] = {}
    for event in events:
        copies.setdefault(event.id, []).append(event)
    return copies
