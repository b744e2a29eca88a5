"""Concurrent requests keep the rules: one default, unique names, unique customer ids."""

import asyncio
import uuid
from collections import Counter

import asyncpg
import pytest

from .support import Api, Tenant, assert_problem

N = 20


@pytest.fixture
def api_tenants(api: Api) -> list[Tenant]:
    return [Tenant(api) for _ in range(4)]


async def test_parallel_defaults_leave_exactly_one(tenant: Tenant, db: asyncpg.Pool) -> None:
    policies = await asyncio.gather(*(tenant.create_policy("end_user") for _ in range(N)))
    admin = await tenant.create_policy("administrator", is_default=True)
    replies = await asyncio.gather(
        *(
            tenant.call("PATCH", f"/v1/import-policies/{p['id']}", json_body={"is_default": True})
            for p in policies
        )
    )
    statuses = Counter(r.status for r in replies)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] >= 1
    for reply in replies:
        if reply.status == 409:
            assert_problem(reply, 409)

    listed = await tenant.policies("end_user")
    defaults = [p["id"] for p in listed if p["is_default"]]
    assert len(defaults) == 1
    rows = await db.fetch(
        "SELECT id, account_type FROM policy_service.policies WHERE partner_id = $1 AND is_default",
        tenant.partner_id,
    )
    assert sorted((str(r["id"]), r["account_type"]) for r in rows) == sorted(
        [(defaults[0], "end_user"), (admin["id"], "administrator")]
    )
    # A customer added now gets that one default.
    customer = await tenant.add_customer()
    assert customer["policy_ids"] == {"end_user": defaults[0], "administrator": admin["id"]}


async def test_parallel_renames_to_one_name(tenant: Tenant) -> None:
    policies = await asyncio.gather(*(tenant.create_policy("end_user") for _ in range(N)))
    replies = await asyncio.gather(
        *(
            tenant.call("PATCH", f"/v1/import-policies/{p['id']}", json_body={"name": "Same Name"})
            for p in policies
        )
    )
    statuses = Counter(r.status for r in replies)
    assert statuses == {200: 1, 409: N - 1}, statuses
    for reply in replies:
        if reply.status == 409:
            assert_problem(reply, 409)
    named = [p for p in await tenant.policies("end_user") if p["name"].lower() == "same name"]
    assert len(named) == 1
    assert named[0]["version"] == 2
    winner = next(r.body for r in replies if r.status == 200)
    assert named[0]["id"] == winner["id"]
    untouched = [p for p in await tenant.policies("end_user") if p["id"] != winner["id"]]
    assert {p["version"] for p in untouched} == {1}


async def test_parallel_creates_with_one_name(tenant: Tenant) -> None:
    body = {"account_type": "administrator", "name": "Admins", "options": {}}
    replies = await asyncio.gather(
        *(tenant.call("POST", "/v1/import-policies", json_body=body) for _ in range(N))
    )
    assert Counter(r.status for r in replies) == {201: 1, 409: N - 1}
    assert len(await tenant.policies("administrator")) == 1


async def test_same_customer_id_from_two_partners_at_once(api_tenants: list[Tenant]) -> None:
    """Customer ids are global: two partners racing for one id get one 201 and one 409."""
    for _ in range(5):
        chosen = str(uuid.uuid4())
        replies = await asyncio.gather(
            *(
                t.call("POST", "/v1/customers", json_body={"name": "Race", "id": chosen})
                for t in api_tenants
            )
        )
        assert sorted(r.status for r in replies) == [201] + [409] * (len(api_tenants) - 1)
        for reply in replies:
            if reply.status == 409:
                assert_problem(reply, 409)


async def test_parallel_assignments_keep_one_policy_per_type(
    tenant: Tenant, db: asyncpg.Pool
) -> None:
    customers = [(await tenant.add_customer())["id"] for _ in range(5)]
    policies = await asyncio.gather(*(tenant.create_policy("end_user") for _ in range(10)))
    replies = await asyncio.gather(
        *(
            tenant.call(
                "PUT",
                f"/v1/import-policies/{p['id']}/customers",
                json_body={"customer_ids": customers},
            )
            for p in policies
        )
    )
    assert {r.status for r in replies} <= {200, 409}
    holders = [p for p in await tenant.policies("end_user") if p["customer_ids"]]
    assert len(holders) == 1
    assert holders[0]["customer_ids"] == sorted(customers)
    for customer_id in customers:
        assigned = await tenant.customer(customer_id)
        assert assigned["policy_ids"]["end_user"] == holders[0]["id"]
    count = await db.fetchval(
        "SELECT count(*) FROM policy_service.assignments WHERE partner_id = $1",
        tenant.partner_id,
    )
    assert count == len(customers)
