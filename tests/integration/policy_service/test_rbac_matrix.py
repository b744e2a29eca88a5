"""Who may do what (docs/contract.md §1): every /v1 route x every role x own / other partner,
and every way a token can be unusable (401)."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import jwt
import pytest

from services.policy_service.adapters.accounts import AccountStore
from services.policy_service.api.routes import ROUTES
from services.policy_service.domain.accounts import read_batch
from tests.account_events import Account, decision_event

from .support import (
    ROLES,
    SECRET,
    UNKNOWN_ROLE,
    WRITERS,
    Api,
    Tenant,
    assert_problem,
    discovered,
)


@dataclass(frozen=True)
class World:
    """The owner's resources that every case aims at."""

    owner: Tenant
    policy: dict[str, Any]
    customer: dict[str, Any]
    integration: dict[str, Any]
    account_key: str

    def path(self, template: str) -> str:
        return template.format(
            policy=self.policy["id"],
            customer=self.customer["id"],
            provider=PROVIDER,
            account=quote(self.account_key, safe=""),
        )


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    ok: int
    write: bool
    body: Callable[[World], Any] | None = None
    check: Callable[[World, Any], bool] = lambda w, body: True  # on the owner's success
    # The path names a provider, which every partner has its own of (integrations).
    partner_namespace: bool = False

    @property
    def by_id(self) -> bool:
        return "{" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PROVIDER = "halo"
HALO = {
    "base_url": "https://acme.halopsa.example",
    "credentials": {"client_id": "halo-client", "client_secret": "halo-secret-value"},
    "settings": {"requests_per_5_minutes": 300},
}

CASES = (
    Case(
        "GET",
        "/v1/import-policies",
        200,
        write=False,
        check=lambda w, body: body["items"] == [w.policy],
    ),
    Case(
        "POST",
        "/v1/import-policies",
        201,
        write=True,
        body=lambda w: {
            "account_type": "administrator",
            "name": f"new {uuid.uuid4()}",
            "customer_ids": [w.customer["id"]],
            "options": {"enable_password_rotation": True},
        },
        check=lambda w, body: body["customer_ids"] == [w.customer["id"]],
    ),
    Case("GET", "/v1/import-policies/{policy}", 200, False, check=lambda w, body: body == w.policy),
    Case(
        "PATCH",
        "/v1/import-policies/{policy}",
        200,
        write=True,
        body=lambda w: {"description": "changed"},
        check=lambda w, body: (body["description"], body["version"]) == ("changed", 2),
    ),
    Case("DELETE", "/v1/import-policies/{policy}", 204, write=True),
    Case(
        "PUT",
        "/v1/import-policies/{policy}/customers",
        200,
        write=True,
        body=lambda w: {"customer_ids": []},
        check=lambda w, body: (body["customer_ids"], body["version"]) == ([], 2),
    ),
    Case(
        "POST",
        "/v1/customers",
        201,
        write=True,
        body=lambda w: {"name": "New customer"},
        check=lambda w, body: body["policy_ids"] == {"end_user": None, "administrator": None},
    ),
    Case("GET", "/v1/customers", 200, False, check=lambda w, body: body["items"] == [w.customer]),
    Case("GET", "/v1/customers/{customer}", 200, False, check=lambda w, b: b == w.customer),
    Case(
        "PATCH",
        "/v1/customers/{customer}",
        200,
        write=True,
        body=lambda w: {"name": "Renamed"},
        check=lambda w, body: (
            (body["name"], body["version"]) == ("Renamed", w.customer["version"] + 1)
        ),
    ),
    Case("DELETE", "/v1/customers/{customer}", 204, write=True),
    Case(
        "GET",
        "/v1/customers/{customer}/effective-policies",
        200,
        write=False,
        check=lambda w, body: body == {"end_user": w.policy, "administrator": None},
    ),
    Case(
        "POST",
        "/v1/import-preview",
        200,
        write=False,
        body=lambda w: discovered(w.customer["id"]),
        check=lambda w, body: body["policy_id"] == w.policy["id"],
    ),
    Case(
        "GET",
        "/v1/integrations",
        200,
        write=False,
        check=lambda w, body: body["items"] == [w.integration],
    ),
    Case(
        "GET",
        "/v1/integrations/{provider}",
        200,
        write=False,
        check=lambda w, body: body == w.integration,
    ),
    Case(
        "PUT",
        "/v1/integrations/{provider}",
        200,
        write=True,
        body=lambda w: HALO,
        check=lambda w, body: body["version"] == w.integration["version"] + 1,
        partner_namespace=True,
    ),
    Case("DELETE", "/v1/integrations/{provider}", 204, write=True),
    Case(
        "GET",
        "/v1/accounts",
        200,
        write=False,
        check=lambda w, body: [a["key"] for a in body["items"]] == [w.account_key],
    ),
    Case(
        "GET",
        "/v1/accounts/{account}",
        200,
        write=False,
        check=lambda w, body: body["key"] == w.account_key and body["status"] == "pending",
    ),
)


def expected(case: Case, role: str, scope: str) -> int:
    if scope == "other" and case.by_id and not case.partner_namespace:
        return 404  # another partner's resource: not found, for every role
    if role == UNKNOWN_ROLE or (case.write and role not in WRITERS):
        return 403
    own_body = case.path == "/v1/customers" or case.partner_namespace
    if scope == "other" and case.body is not None and not own_body:
        return 422  # the body names the owner's customer, which the caller cannot see
    return case.ok


def test_the_matrix_covers_every_v1_route() -> None:
    routes = {(r.method, r.path) for r in ROUTES if r.path.startswith("/v1/")}
    covered = {
        (
            c.method,
            c.path.replace("{policy}", "{id}")
            .replace("{customer}", "{id}")
            .replace("{account}", "{account_key}"),
        )
        for c in CASES
    }
    assert covered == routes


@pytest.fixture
async def world(tenant: Tenant, db: asyncpg.Pool) -> World:
    return await build_world(tenant, db)


async def record_account(db: asyncpg.Pool, decision: bytes) -> None:
    """Into the read model as its consumer would (the session's service runs none)."""
    batch = read_batch([decision])
    async with db.acquire() as conn:
        await AccountStore(conn).apply(list(batch.decisions.values()), [])


async def build_world(tenant: Tenant, db: asyncpg.Pool) -> World:
    """An owner's customer, policy, integration and decided account (also the chaos
    API-abuse scenario's)."""
    customer = await tenant.add_customer(name="Owner's customer")
    policy = await tenant.create_policy(
        "end_user",
        name=f"Owner's policy {uuid.uuid4()}",
        customer_ids=[customer["id"]],
        options={"send_welcome_email": True},
    )
    integration = await tenant.ok("PUT", f"/v1/integrations/{PROVIDER}", json_body=HALO)
    account = Account(tenant.partner_id, uuid.UUID(customer["id"]))
    await record_account(db, decision_event(account, ("psa.contact.link",)))
    return World(tenant, policy, await tenant.customer(customer["id"]), integration, account.key)


@pytest.mark.parametrize("scope", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_access(case: Case, role: str, scope: str, world: World, api: Api) -> None:
    caller = world.owner if scope == "own" else Tenant(api)
    kwargs: dict[str, Any] = {"json_body": case.body(world)} if case.body else {}
    reply = await caller.call(case.method, world.path(case.path), role=role, **kwargs)
    want = expected(case, role, scope)

    if want >= 400:
        problem = assert_problem(reply, want)
        assert world.policy["name"] not in str(problem)
        assert world.customer["name"] not in str(problem)
        if scope == "other" and case.by_id and not case.partner_namespace:
            # indistinguishable from an id that does not exist
            missing = case.path.format(
                policy=uuid.uuid4(),
                customer=uuid.uuid4(),
                provider=PROVIDER,
                account=quote(f"{caller.partner_id}:{uuid.uuid4()}:local:x", safe=""),
            )
            unknown = await caller.call(case.method, missing, role=role, **kwargs)
            assert (unknown.status, unknown.body["title"]) == (want, problem["title"])
        # Refused means unchanged.
        assert await world.owner.policy(world.policy["id"]) == world.policy
        assert await world.owner.customer(world.customer["id"]) == world.customer
        assert await world.owner.ok("GET", world.path("/v1/integrations/{provider}")) == (
            world.integration
        )
        return
    assert reply.status == want, (reply.status, reply.body)
    if scope == "other":  # lists and creations stay inside the caller's partner
        assert world.policy["id"] not in str(reply.body)
        assert world.customer["id"] not in str(reply.body)
        assert await world.owner.policy(world.policy["id"]) == world.policy
        assert await world.owner.ok("GET", world.path("/v1/integrations/{provider}")) == (
            world.integration
        )
    elif case.method == "DELETE":
        assert_problem(await world.owner.call("GET", world.path(case.path)), 404)
    else:
        assert case.check(world, reply.body), reply.body


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "user-1",
        "partner_id": "p-auth-tests",
        "role": "manager",
        "exp": int(time.time()) + 600,
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


def _signed(secret: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return "Bearer " + jwt.encode(_claims(**overrides), secret, algorithm=algorithm)


def _alg_none() -> str:
    return "Bearer " + jwt.encode(_claims(), None, algorithm="none")


BAD_AUTH: dict[str, Callable[[], str | None]] = {
    "missing": lambda: None,
    "basic scheme": lambda: "Basic dXNlcjpwYXNzd29yZA==",
    "empty bearer": lambda: "Bearer ",
    "not a jwt": lambda: "Bearer not-a-jwt",
    "garbage segments": lambda: "Bearer a.b.c",
    "wrong secret": lambda: _signed(secret="another-secret-" + "x" * 64),
    "expired": lambda: _signed(exp=int(time.time()) - 60),
    "alg none": _alg_none,
    "hs512": lambda: _signed(algorithm="HS512"),
    "no sub": lambda: _signed(sub=None),
    "no partner_id": lambda: _signed(partner_id=None),
    "no role": lambda: _signed(role=None),
    "no exp": lambda: _signed(exp=None),
    "partner_id with a colon": lambda: _signed(partner_id="a:b"),
    "partner_id not a string": lambda: _signed(partner_id=42),
}


@pytest.mark.parametrize("make_auth", BAD_AUTH.values(), ids=BAD_AUTH.keys())
async def test_unusable_token_is_401_on_every_route(
    make_auth: Callable[[], str | None], api: Api
) -> None:
    auth = make_auth()
    some_id = str(uuid.uuid4())
    for case in CASES:
        path = case.path.format(
            policy=some_id, customer=some_id, provider=PROVIDER, account=some_id
        )
        kwargs: dict[str, Any] = {}
        if case.body is not None:
            kwargs["json_body"] = {"name": "x"}
        reply = await api.call(case.method, path, auth=auth, **kwargs)
        problem = assert_problem(reply, 401)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer"), case
        assert problem["instance"] == path
