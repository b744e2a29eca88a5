"""Policies and customers through the HTTP API (docs/contract.md §§1 and 4)."""

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from schemas.policy import PolicyState
from services.policy_service.adapters.repository import Repository

from .support import Tenant, assert_problem, discovered, error_fields

PSA_ON = {"psa": {"match": True, "create_if_missing": True}}


async def test_create_then_get_with_etag(tenant: Tenant) -> None:
    customer = await tenant.add_customer()
    reply = await tenant.call(
        "POST",
        "/v1/import-policies",
        json_body={
            "account_type": "end_user",
            "name": "Standard",
            "description": "for everyone",
            "customer_ids": [customer["id"]],
            "options": {"send_welcome_email": True, **PSA_ON},
        },
    )
    assert reply.status == 201, reply.body
    created = reply.body
    assert reply.headers["Location"] == f"/v1/import-policies/{created['id']}"
    assert reply.headers["ETag"] == '"1"'
    assert created["version"] == 1
    assert created["customer_ids"] == [customer["id"]]
    assert created["is_default"] is False
    assert created["options"] == {
        "documentation": {"match": False, "create_if_missing": False},
        "psa": {"match": True, "create_if_missing": True},
        "send_welcome_email": True,
        "enable_self_serve_reset": False,
        "sync_password_to_m365": False,
    }
    got = await tenant.call("GET", f"/v1/import-policies/{created['id']}", role="read_only")
    assert got.status == 200
    assert got.body == created
    assert got.headers["ETag"] == '"1"'
    assigned = await tenant.customer(customer["id"])
    assert assigned["policy_ids"] == {"end_user": created["id"], "administrator": None}
    assert assigned["version"] == 2


async def test_list_filters_by_account_type(tenant: Tenant) -> None:
    end_user = await tenant.create_policy("end_user")
    admin = await tenant.create_policy("administrator")
    assert [p["id"] for p in await tenant.policies("end_user")] == [end_user["id"]]
    assert [p["id"] for p in await tenant.policies("administrator")] == [admin["id"]]
    assert {p["id"] for p in await tenant.policies()} == {end_user["id"], admin["id"]}


async def test_pagination_has_no_duplicates_or_gaps(tenant: Tenant) -> None:
    # Created in parallel, so several share a created_at and the id breaks the tie.
    created = await asyncio.gather(*(tenant.create_policy("end_user") for _ in range(11)))
    await tenant.create_policy("administrator")
    seen: list[str] = []
    pages = 0
    path = "/v1/import-policies?account_type=end_user&limit=3"
    while True:
        page = await tenant.ok("GET", path, role="technician")
        pages += 1
        assert len(page["items"]) <= 3
        seen += [p["id"] for p in page["items"]]
        if page["next_cursor"] is None:
            break
        path = f"/v1/import-policies?account_type=end_user&limit=3&cursor={page['next_cursor']}"
    assert pages == 4
    assert len(seen) == len(set(seen)) == 11
    assert set(seen) == {p["id"] for p in created}

    customers = [(await tenant.add_customer())["id"] for _ in range(5)]
    first = await tenant.ok("GET", "/v1/customers?limit=2")
    second = await tenant.ok("GET", f"/v1/customers?limit=2&cursor={first['next_cursor']}")
    third = await tenant.ok("GET", f"/v1/customers?limit=2&cursor={second['next_cursor']}")
    listed = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert listed == customers
    assert third["next_cursor"] is None


async def test_patch_honours_if_match(tenant: Tenant) -> None:
    policy = await tenant.create_policy()
    path = f"/v1/import-policies/{policy['id']}"
    first = await tenant.call(
        "PATCH", path, json_body={"description": "v2"}, headers={"If-Match": '"1"'}
    )
    assert first.status == 200, first.body
    assert first.headers["ETag"] == '"2"'
    stale = await tenant.call(
        "PATCH", path, json_body={"description": "lost"}, headers={"If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    anything = await tenant.call(
        "PATCH", path, json_body={"name": "renamed"}, headers={"If-Match": "*"}
    )
    assert anything.status == 200
    current = await tenant.policy(policy["id"])
    assert (current["description"], current["name"], current["version"]) == ("v2", "renamed", 3)


async def test_options_are_merge_patched(tenant: Tenant) -> None:
    policy = await tenant.create_policy(
        options={"documentation": {"match": True}, "send_welcome_email": True}
    )
    patched = await tenant.ok(
        "PATCH",
        f"/v1/import-policies/{policy['id']}",
        json_body={"options": {"documentation": {"create_if_missing": True}, **PSA_ON}},
    )
    assert patched["options"] == {
        "documentation": {"match": True, "create_if_missing": True},
        "psa": {"match": True, "create_if_missing": True},
        "send_welcome_email": True,
        "enable_self_serve_reset": False,
        "sync_password_to_m365": False,
    }
    assert patched["version"] == 2
    # RFC 7396: null removes a member, which leaves the option at its default (off).
    removed = await tenant.ok(
        "PATCH",
        f"/v1/import-policies/{policy['id']}",
        json_body={"options": {"send_welcome_email": None, "psa": None}},
    )
    assert removed["options"]["send_welcome_email"] is False
    assert removed["options"]["psa"] == {"match": False, "create_if_missing": False}
    assert removed["options"]["documentation"] == {"match": True, "create_if_missing": True}


async def test_create_if_missing_without_match_is_422(tenant: Tenant) -> None:
    bad = {"psa": {"match": False, "create_if_missing": True}}
    created = await tenant.call(
        "POST",
        "/v1/import-policies",
        json_body={"account_type": "end_user", "name": "bad", "options": bad},
    )
    problem = assert_problem(created, 422)
    assert error_fields(problem) == {"options.psa"}
    assert [e["pointer"] for e in problem["errors"]] == ["#/options/psa"]
    assert await tenant.policies() == []

    policy = await tenant.create_policy("administrator")
    patched = await tenant.call(
        "PATCH",
        f"/v1/import-policies/{policy['id']}",
        json_body={"options": {"documentation": {"create_if_missing": True}}},
    )
    assert error_fields(assert_problem(patched, 422)) == {"options.documentation"}
    assert (await tenant.policy(policy["id"]))["version"] == 1


async def test_account_type_cannot_change(tenant: Tenant) -> None:
    policy = await tenant.create_policy("end_user")
    reply = await tenant.call(
        "PATCH", f"/v1/import-policies/{policy['id']}", json_body={"account_type": "administrator"}
    )
    problem = assert_problem(reply, 422)
    [error] = problem["errors"]
    assert (error["field"], error["pointer"]) == ("account_type", "#/account_type")
    assert "create a new policy" in error["detail"]
    assert (await tenant.policy(policy["id"]))["account_type"] == "end_user"


async def test_delete_unassigns_customers(tenant: Tenant) -> None:
    customer = await tenant.add_customer()
    admin = await tenant.create_policy("administrator", customer_ids=[customer["id"]])
    policy = await tenant.create_policy("end_user", customer_ids=[customer["id"]])
    await tenant.ok("DELETE", f"/v1/import-policies/{policy['id']}", 204)
    gone = await tenant.call("GET", f"/v1/import-policies/{policy['id']}")
    assert_problem(gone, 404)
    after = await tenant.customer(customer["id"])
    assert after["policy_ids"] == {"end_user": None, "administrator": admin["id"]}
    assert after["version"] == 4
    again = await tenant.call("DELETE", f"/v1/import-policies/{policy['id']}")
    assert_problem(again, 404)


async def test_put_customers_sets_the_exact_set(tenant: Tenant) -> None:
    c1, c2, c3 = [(await tenant.add_customer())["id"] for _ in range(3)]
    other = await tenant.create_policy("end_user", customer_ids=[c3])
    admin = await tenant.create_policy("administrator", customer_ids=[c3])
    policy = await tenant.create_policy("end_user", customer_ids=[c1, c2])
    result = await tenant.ok(
        "PUT", f"/v1/import-policies/{policy['id']}/customers", json_body={"customer_ids": [c2, c3]}
    )
    assert result["customer_ids"] == sorted([c2, c3])
    assert result["version"] == policy["version"] + 1
    assert (await tenant.customer(c1))["policy_ids"]["end_user"] is None
    moved = await tenant.customer(c3)
    assert moved["policy_ids"] == {"end_user": policy["id"], "administrator": admin["id"]}
    left = await tenant.policy(other["id"])
    assert left["customer_ids"] == []
    assert left["version"] == other["version"] + 1
    assert (await tenant.policy(admin["id"]))["version"] == admin["version"]

    unknown = str(uuid.uuid4())
    bad = await tenant.call(
        "PUT",
        f"/v1/import-policies/{policy['id']}/customers",
        json_body={"customer_ids": [c1, unknown]},
    )
    assert error_fields(assert_problem(bad, 422)) == {"customer_ids.1"}
    assert (await tenant.policy(policy["id"]))["customer_ids"] == sorted([c2, c3])


async def test_making_b_default_clears_a_in_the_same_change(tenant: Tenant) -> None:
    a = await tenant.create_policy("end_user", is_default=True)
    b = await tenant.create_policy("end_user")
    admin = await tenant.create_policy("administrator", is_default=True)
    new_b = await tenant.ok(
        "PATCH", f"/v1/import-policies/{b['id']}", json_body={"is_default": True}
    )
    new_a = await tenant.policy(a["id"])
    assert new_b["is_default"] is True
    assert new_a["is_default"] is False
    assert new_a["version"] == a["version"] + 1
    assert new_a["updated_at"] == new_b["updated_at"]  # one transaction
    defaults = [p["id"] for p in await tenant.policies() if p["is_default"]]
    assert sorted(defaults) == sorted([b["id"], admin["id"]])


async def test_new_customer_gets_both_defaults(tenant: Tenant) -> None:
    await tenant.create_policy("end_user")
    end_user = await tenant.create_policy("end_user", is_default=True)
    admin = await tenant.create_policy("administrator", is_default=True)
    customer = await tenant.add_customer()
    assert customer["policy_ids"] == {"end_user": end_user["id"], "administrator": admin["id"]}
    assert customer["version"] == 1
    assert (await tenant.policy(end_user["id"]))["customer_ids"] == [customer["id"]]
    assert (await tenant.policy(admin["id"]))["customer_ids"] == [customer["id"]]

    effective = await tenant.ok(
        "GET", f"/v1/customers/{customer['id']}/effective-policies", role="read_only"
    )
    assert effective["end_user"] == await tenant.policy(end_user["id"])
    assert effective["administrator"] == await tenant.policy(admin["id"])

    await tenant.ok("PATCH", f"/v1/import-policies/{admin['id']}", json_body={"is_default": False})
    later = await tenant.add_customer()
    assert later["policy_ids"] == {"end_user": end_user["id"], "administrator": None}
    effective = await tenant.ok("GET", f"/v1/customers/{later['id']}/effective-policies")
    assert effective["administrator"] is None
    assert effective["end_user"]["id"] == end_user["id"]


async def test_preview_on_a_shared_psa_company(tenant: Tenant) -> None:
    psa = {"provider": "connectwise", "company_id": "cw-42"}
    customer = await tenant.add_customer(psa=psa)
    await tenant.add_customer(psa=psa)
    policy = await tenant.create_policy(
        "end_user", customer_ids=[customer["id"]], options={**PSA_ON, "send_welcome_email": True}
    )
    preview = await tenant.ok(
        "POST", "/v1/import-preview", role="technician", json_body=discovered(customer["id"])
    )
    assert preview["outcome"] == "imported"
    assert preview["policy_id"] == policy["id"]
    assert preview["policy_version"] == policy["version"]
    types = [c["type"] for c in preview["commands"]]
    assert types == ["psa.contact.link", "notification.welcome_email.send"]
    link = preview["commands"][0]
    assert link["topic"] == "commands.psa"
    assert link["data"]["create_if_missing"] is False
    assert link["data"]["company_id"] == "cw-42"
    assert [(n["option"], n["reason"]) for n in preview["notes"]] == [
        ("psa.create_if_missing", "shared_psa_company")
    ]


async def test_preview_without_policy(tenant: Tenant) -> None:
    customer = await tenant.add_customer()
    preview = await tenant.ok(
        "POST", "/v1/import-preview", json_body=discovered(customer["id"], "administrator")
    )
    assert preview == {
        "outcome": "no_policy",
        "policy_id": None,
        "policy_version": None,
        "commands": [],
        "notes": [],
    }
    unknown = await tenant.call(
        "POST", "/v1/import-preview", json_body=discovered(str(uuid.uuid4()))
    )
    assert error_fields(assert_problem(unknown, 422)) == {"customer_id"}


async def test_names_are_unique_per_account_type_ignoring_case(tenant: Tenant) -> None:
    first = await tenant.create_policy("end_user", name="Standard Users")
    same = await tenant.call(
        "POST",
        "/v1/import-policies",
        json_body={"account_type": "end_user", "name": "standard USERS", "options": {}},
    )
    assert_problem(same, 409)
    await tenant.create_policy("administrator", name="STANDARD users")
    second = await tenant.create_policy("end_user", name="Other")
    rename = await tenant.call(
        "PATCH", f"/v1/import-policies/{second['id']}", json_body={"name": "STANDARD USERS"}
    )
    assert_problem(rename, 409)
    assert (await tenant.policy(second["id"]))["version"] == 1
    assert [p["id"] for p in await tenant.policies("end_user")] == [first["id"], second["id"]]


async def test_customer_with_explicit_id(tenant: Tenant, other_tenant: Tenant) -> None:
    chosen = str(uuid.uuid4())
    customer = await tenant.add_customer(
        id=chosen, documentation={"provider": "hudu", "organization_id": "h-1"}
    )
    assert customer["id"] == chosen
    assert customer["documentation"] == {"provider": "hudu", "organization_id": "h-1"}
    again = await tenant.call("POST", "/v1/customers", json_body={"name": "x", "id": chosen})
    assert_problem(again, 409)
    elsewhere = await other_tenant.call(
        "POST", "/v1/customers", json_body={"name": "x", "id": chosen}
    )
    assert_problem(elsewhere, 409)
    assert (await tenant.customer(chosen))["name"] == customer["name"]


async def test_customer_patch_and_remove(tenant: Tenant) -> None:
    customer = await tenant.add_customer(psa={"provider": "halo", "company_id": "h-7"})
    policy = await tenant.create_policy("end_user", customer_ids=[customer["id"]])
    path = f"/v1/customers/{customer['id']}"
    patched = await tenant.ok(
        "PATCH",
        path,
        json_body={"psa": None, "documentation": {"provider": "itglue", "organization_id": "o-1"}},
    )
    assert patched["psa"] is None
    assert patched["documentation"] == {"provider": "itglue", "organization_id": "o-1"}
    assert patched["version"] == 3
    stale = await tenant.call("PATCH", path, json_body={"name": "x"}, headers={"If-Match": '"2"'})
    assert_problem(stale, 412)
    await tenant.ok("DELETE", path, 204)
    assert_problem(await tenant.call("GET", path), 404)
    after = await tenant.policy(policy["id"])
    assert after["customer_ids"] == []
    assert after["version"] == policy["version"] + 1


async def test_one_patch_of_fields_default_and_customers_answers_the_whole_change(
    tenant: Tenant,
) -> None:
    """The UPDATE of the fields returns the policy's state; a default flag or a customer
    moved after it in the same change must still show in the answer (and version once)."""
    policy = await tenant.create_policy()
    customer = await tenant.ok("POST", "/v1/customers", 201, json_body={"name": "Contoso"})
    patched = await tenant.ok(
        "PATCH",
        f"/v1/import-policies/{policy['id']}",
        json_body={
            "description": "all at once",
            "is_default": True,
            "customer_ids": [customer["id"]],
        },
    )
    assert patched["description"] == "all at once"
    assert patched["is_default"] is True
    assert patched["customer_ids"] == [customer["id"]]
    assert patched["version"] == policy["version"] + 1
    assert patched == await tenant.policy(policy["id"])


async def test_a_change_made_from_a_version_no_longer_current_answers_409(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/contract.md: 409 for a conflicting concurrent change. Under the partner lock
    none can happen; here the read is made to return the version before the current."""
    policy = await tenant.create_policy()
    await tenant.ok("PATCH", f"/v1/import-policies/{policy['id']}", json_body={"description": "2"})
    read = Repository.policy_and_now

    async def one_version_behind(
        self: Repository, *args: Any
    ) -> tuple[PolicyState | None, datetime]:
        state, now = await read(self, *args)
        assert state is not None
        return state.model_copy(update={"version": state.version - 1}), now

    monkeypatch.setattr(Repository, "policy_and_now", one_version_behind)
    reply = await tenant.call(
        "PATCH", f"/v1/import-policies/{policy['id']}", json_body={"name": "lost"}
    )
    assert_problem(reply, 409)
    monkeypatch.undo()
    current = await tenant.policy(policy["id"])
    assert (current["name"], current["description"], current["version"]) == (
        policy["name"],
        "2",
        2,
    )
