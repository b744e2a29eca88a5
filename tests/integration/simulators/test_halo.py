"""Halo PSA: client-credentials tokens, users search and paging, upserts, the 5-minute limit."""

from typing import Any

import pytest

from tests.simulators import HaloSim, RateLimit

from .conftest import Client, FakeClock, Serve

FORM = {
    "grant_type": "client_credentials",
    "client_id": "cid",
    "client_secret": "csecret",
    "scope": "all",
}


def make_sim(**options: object) -> HaloSim:
    sim = HaloSim(client_id="cid", client_secret="csecret", tenant="acme", **options)  # type: ignore[arg-type]
    sim.add_client(88, "Tailspin Toys", sites={881: "Main", 882: "Branch"})
    sim.add_client(99, "Other")
    return sim


@pytest.fixture
def sim(clock: FakeClock) -> HaloSim:
    return make_sim(clock=clock)


@pytest.fixture
async def client(sim: HaloSim, serve: Serve) -> Client:
    return await serve(sim)


async def token(client: Client, **overrides: str) -> str:
    resp = await client.post("/auth/token?tenant=acme", data={**FORM, **overrides})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    value: str = body["access_token"]
    return value


async def auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token(client)}"}


async def users(client: Client, headers: dict[str, str], **params: str) -> Any:
    resp = await client.get("/api/Users", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_token_lives_an_hour_by_default(client: Client) -> None:
    resp = await client.post("/auth/token", data=FORM)
    assert (await resp.json())["expires_in"] == 3600


async def test_token_errors(client: Client) -> None:
    bad = await client.post("/auth/token", data={**FORM, "client_secret": "nope"})
    assert bad.status == 401
    body = await bad.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"]
    assert (await client.post("/auth/token?tenant=other", data=FORM)).status == 401
    grant = await client.post("/auth/token", data={**FORM, "grant_type": "password"})
    assert grant.status == 400
    assert (await client.post("/auth/token", data=FORM)).status == 200  # tenant is optional


async def test_api_calls_need_a_live_token(sim: HaloSim, client: Client, clock: FakeClock) -> None:
    assert (await client.get("/api/Users")).status == 401
    unknown = await client.get("/api/Users", headers={"Authorization": "Bearer forged"})
    assert unknown.status == 401
    assert (await unknown.json())["error"] == "invalid_token"
    sim.tokens.lifetime = 10
    headers = await auth(client)
    assert (await client.get("/api/Users", headers=headers)).status == 200
    clock.advance(10)
    assert (await client.get("/api/Users", headers=headers)).status == 401
    assert (await client.get("/api/Users", headers=await auth(client))).status == 200


async def test_token_lifetime_is_configurable_over_http(client: Client) -> None:
    config = await client.post("/_sim/config", json={"token_lifetime": 0.5})
    assert (await config.json())["token_lifetime"] == 0.5
    resp = await client.post("/auth/token", data=FORM)
    assert (await resp.json())["expires_in"] == 1  # whole seconds, rounded up


async def test_search_and_filters(sim: HaloSim, client: Client) -> None:
    sim.add_user(name="Jo Doe", emailaddress="Jo@Tailspin.com", site_id=881, login="jdoe")
    sim.add_user(firstname="Kim", surname="Lee", emailaddress="kim@tailspin.com", site_id=882)
    sim.add_user(name="Old Timer", client_id=88, inactive=True)
    sim.add_user(name="Jo Other", client_id=99)
    headers = await auth(client)
    found = await users(client, headers, search="jo@tailspin.COM", client_id="88")
    assert [u["name"] for u in found["users"]] == ["Jo Doe"]
    assert found["record_count"] == 1
    user = found["users"][0]
    for field in (
        "id",
        "firstname",
        "surname",
        "phonenumber",
        "mobilenumber",
        "activedirectory_dn",
    ):
        assert field in user
    assert (user["client_id"], user["site_id"], user["inactive"]) == (88, 881, False)
    assert [u["login"] for u in (await users(client, headers, search="JDOE"))["users"]] == ["jdoe"]
    assert len((await users(client, headers, search="jo"))["users"]) == 2
    assert len((await users(client, headers, client_id="88"))["users"]) == 2
    assert len((await users(client, headers, client_id="88", includeinactive="true"))["users"]) == 3
    assert len((await users(client, headers, site_id="882"))["users"]) == 1
    kim = (await users(client, headers, site_id="882"))["users"][0]
    assert kim["name"] == "Kim Lee"
    unknown = await client.get("/api/Users", params={"client_id": "12345"}, headers=headers)
    assert unknown.status == 400


async def test_paging_reports_the_total(sim: HaloSim, client: Client) -> None:
    for n in range(7):
        sim.add_user(name=f"User {n}", client_id=88)
    headers = await auth(client)
    pages = [
        await users(client, headers, pageinate="true", page_size="3", page_no=str(n))
        for n in (1, 2, 3, 4)
    ]
    assert [len(p["users"]) for p in pages] == [3, 3, 1, 0]
    assert {p["record_count"] for p in pages} == {7}
    names = [u["name"] for p in pages for u in p["users"]]
    assert names == sorted(names)
    assert len((await users(client, headers, count="2"))["users"]) == 2


async def test_post_users_creates_and_updates(sim: HaloSim, client: Client) -> None:
    headers = await auth(client)
    one = await client.post(
        "/api/Users",
        json=[
            {
                "firstname": "Jo",
                "surname": "Doe",
                "name": "Jo Doe",
                "emailaddress": "a@b.com",
                "site_id": 881,
            }
        ],
        headers=headers,
    )
    assert one.status == 200
    created = await one.json()
    assert isinstance(created, dict)
    assert (created["name"], created["client_id"], created["site_id"]) == ("Jo Doe", 88, 881)
    updated = await client.post(
        "/api/Users",
        json=[{"id": created["id"], "activedirectory_dn": "CN=Jo"}],
        headers=headers,
    )
    assert (await updated.json())["activedirectory_dn"] == "CN=Jo"
    assert sim.users[created["id"]]["emailaddress"] == "a@b.com"
    several = await client.post(
        "/api/Users",
        json=[{"name": "A", "client_id": 88}, {"name": "B", "client_id": 99}],
        headers=headers,
    )
    saved = await several.json()
    assert isinstance(saved, list)
    assert [u["site_id"] for u in saved] == [881, 991]
    fetched = await client.get(f"/api/Users/{created['id']}", headers=headers)
    assert (await fetched.json())["id"] == created["id"]
    assert (await client.get("/api/Users/9999", headers=headers)).status == 404
    assert (await (await client.get("/api/Client/88", headers=headers)).json())[
        "name"
    ] == "Tailspin Toys"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Jo"},
        [{"name": "Jo", "client_id": 12345}],
        [{"name": "Jo", "site_id": 12345}],
        [{"name": "Jo", "site_id": 881, "client_id": 99}],
        [{"client_id": 88}],
        [{"name": "Jo", "client_id": 88, "email": "a@b.com"}],
        [{"id": 9999, "name": "Ghost"}],
        [],
    ],
)
async def test_invalid_posts_are_400(client: Client, body: Any) -> None:
    resp = await client.post("/api/Users", json=body, headers=await auth(client))
    assert resp.status == 400
    assert "message" in await resp.json()


async def test_the_limit_excludes_token_requests(serve: Serve, clock: FakeClock) -> None:
    assert RateLimit(300, 300.0) == HaloSim.DEFAULT_RATE_LIMIT
    sim = make_sim(rate_limit=RateLimit(2, 300.0), clock=clock)
    client = await serve(sim)
    for _ in range(4):
        await token(client)
    headers = await auth(client)
    assert (await client.get("/api/Users", headers=headers)).status == 200
    assert (await client.get("/api/Users", headers=headers)).status == 200
    refused = await client.get("/api/Users", headers=headers)
    assert refused.status == 429
    assert await refused.text() == "Rate Limit Reached"
    assert refused.headers["Retry-After"] == "300"
    assert sim.max_in_any_window() == 3
