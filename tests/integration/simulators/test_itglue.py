"""IT Glue: 403 on a bad key, 415 without the JSON:API type, passwords (list, create, update)."""

from typing import Any

import pytest

from tests.simulators import ITGlueSim, RateLimit

from .conftest import Client, FakeClock, Serve

JSONAPI = "application/vnd.api+json"
KEY = {"x-api-key": "ITG.key"}
WRITE = {**KEY, "Content-Type": JSONAPI}
NESTED = "/organizations/50101/relationships/passwords"


def make_sim(**options: object) -> ITGlueSim:
    sim = ITGlueSim(api_key="ITG.key", **options)  # type: ignore[arg-type]
    sim.add_organization(50101, "Contoso Ltd")
    sim.add_organization(50233, "Northwind Traders")
    return sim


@pytest.fixture
def sim() -> ITGlueSim:
    return make_sim()


@pytest.fixture
async def client(sim: ITGlueSim, serve: Serve) -> Client:
    return await serve(sim)


def document(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "passwords", "attributes": attributes}}


async def test_a_bad_or_missing_key_is_403(client: Client) -> None:
    for headers in ({"x-api-key": "ITG.wrong"}, {}):
        resp = await client.get(NESTED, headers=headers)
        assert resp.status == 403
        [error] = (await resp.json())["errors"]
        assert error["status"] == "403"


async def test_a_body_needs_the_json_api_content_type(client: Client) -> None:
    resp = await client.post(NESTED, json=document(name="n", password="p"), headers=KEY)
    assert resp.status == 415
    assert (await resp.json())["errors"][0]["status"] == "415"


async def test_create_accepts_kebab_and_snake_case_and_answers_kebab(
    sim: ITGlueSim, client: Client
) -> None:
    resp = await client.post(
        NESTED,
        json=document(
            name="jdoe (AD)",
            username="jdoe",
            password="S3cret!",
            password_category_id=15,
            notes="marker",
            url="https://portal",
        ),
        headers=WRITE,
    )
    assert resp.status == 201
    assert resp.content_type == JSONAPI
    data = (await resp.json())["data"]
    assert (data["type"], data["id"]) == ("passwords", "1")
    attributes = data["attributes"]
    assert attributes["password-category-id"] == 15
    assert attributes["password-category-name"] == "Active Directory"
    assert attributes["organization-id"] == 50101
    assert (attributes["username"], attributes["notes"]) == ("jdoe", "marker")
    assert "password" not in attributes  # show_password defaults to false on POST
    kebab = await client.post(
        NESTED + "?show_password=true",
        json=document(**{"name": "k", "password": "p", "password-category-id": "16"}),
        headers=WRITE,
    )
    assert (await kebab.json())["data"]["attributes"]["password"] == "p"
    assert sim.passwords[2]["password-category-id"] == 16


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"username": "u", "password": "p"}, "/data/attributes/name"),
        ({"name": "n"}, "/data/attributes/password"),
        ({"name": "n", "password": "p", "password_category_id": 999}, None),
        ({"name": "n", "password": "p", "pasword": "typo"}, None),
    ],
)
async def test_invalid_passwords_are_422(
    client: Client, attributes: dict[str, Any], pointer: str | None
) -> None:
    resp = await client.post(NESTED, json=document(**attributes), headers=WRITE)
    assert resp.status == 422
    [error] = (await resp.json())["errors"]
    assert (error["status"], error["title"]) == ("422", "Unprocessable Entity")
    assert error["detail"]
    assert error["source"]["pointer"].startswith("/data/attributes/")
    if pointer:
        assert error["source"]["pointer"] == pointer


async def test_bulk_create_is_all_or_nothing(sim: ITGlueSim, client: Client) -> None:
    items = [
        {"type": "passwords", "attributes": {"name": "a", "password": "p"}},
        {"type": "passwords", "attributes": {"name": "b", "password": "p"}},
    ]
    resp = await client.post(NESTED, json={"data": items}, headers=WRITE)
    assert len((await resp.json())["data"]) == 2
    bad = [*items, {"type": "passwords", "attributes": {"name": "c"}}]
    assert (await client.post(NESTED, json={"data": bad}, headers=WRITE)).status == 422
    assert len(sim.passwords) == 2


async def test_an_unknown_organisation_is_404(client: Client) -> None:
    for path in ("/organizations/999/relationships/passwords", "/organizations/999"):
        resp = await client.get(path, headers=KEY)
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["status"] == "404"
    org = await (await client.get("/organizations/50101", headers=KEY)).json()
    assert org["data"]["attributes"]["name"] == "Contoso Ltd"


async def test_listing_filters_pages_and_never_shows_values(sim: ITGlueSim, client: Client) -> None:
    for n in range(7):
        sim.add_password(50101, name=f"acct{n}", username=f"u{n}", password="p")
    sim.add_password(50101, name="Shared", username="jdoe", password="p", password_category_id=16)
    sim.add_password(50101, name="Old", password="p", archived=True)
    sim.add_password(50233, name="Shared", password="p")

    async def listing(**params: str) -> Any:
        resp = await client.get(NESTED, params=params, headers=KEY)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    page = await listing(**{"page[size]": "3", "page[number]": "2"})
    assert [d["attributes"]["name"] for d in page["data"]] == ["acct3", "acct4", "acct5"]
    meta = page["meta"]
    assert (meta["current-page"], meta["next-page"], meta["prev-page"]) == (2, 3, 1)
    assert (meta["total-pages"], meta["total-count"]) == (3, 8)
    assert (
        "page%5Bnumber%5D=3" in page["links"]["next"] or "page[number]=3" in page["links"]["next"]
    )
    assert all("password" not in d["attributes"] for d in page["data"])
    last = await listing(**{"page[size]": "3", "page[number]": "3"})
    assert last["meta"]["next-page"] is None
    assert "next" not in last["links"]
    assert len((await listing())["data"]) == 8  # default page size 50
    assert [
        d["attributes"]["username"] for d in (await listing(**{"filter[name]": "shared"}))["data"]
    ] == ["jdoe"]
    assert len((await listing(**{"filter[password_category_id]": "16"}))["data"]) == 1
    archived = await listing(**{"filter[archived]": "true"})
    assert [d["attributes"]["name"] for d in archived["data"]] == ["Old"]
    everywhere = await client.get("/passwords", params={"filter[name]": "Shared"}, headers=KEY)
    assert len((await everywhere.json())["data"]) == 2
    refused = await client.get(NESTED, params={"filter[username]": "jdoe"}, headers=KEY)
    assert refused.status == 400


async def test_page_size_is_capped_at_1000(sim: ITGlueSim, client: Client) -> None:
    for n in range(1001):
        sim.add_password(50233, name=f"p{n}", password="p")
    resp = await client.get(
        "/organizations/50233/relationships/passwords", params={"page[size]": "5000"}, headers=KEY
    )
    body = await resp.json()
    assert len(body["data"]) == 1000
    assert body["meta"]["next-page"] == 2


async def test_show_returns_the_value(serve: Serve, sim: ITGlueSim, client: Client) -> None:
    record = sim.add_password(50101, name="n", username="u", password="v@lue")
    for path in (f"/passwords/{record['id']}", f"{NESTED}/{record['id']}"):
        shown = await (await client.get(path, headers=KEY)).json()
        assert shown["data"]["attributes"]["password"] == "v@lue"
    hidden = await client.get(f"/passwords/{record['id']}?show_password=false", headers=KEY)
    assert "password" not in (await hidden.json())["data"]["attributes"]
    other_org = await client.get(
        f"/organizations/50233/relationships/passwords/{record['id']}", headers=KEY
    )
    assert other_org.status == 404
    no_access = make_sim(password_access=False)
    no_access.add_password(50101, name="n", password="v")
    other = await serve(no_access)
    assert (
        "password"
        not in (await (await other.get("/passwords/1", headers=KEY)).json())["data"]["attributes"]
    )


async def test_patch_updates_partially(sim: ITGlueSim, client: Client) -> None:
    record = sim.add_password(50101, name="n", username="u", password="old", notes="keep")
    nested = await client.patch(
        f"{NESTED}/{record['id']}",
        json=document(password="new", **{"password-updated-at": "2026-01-01T00:00:00Z"}),
        headers=WRITE,
    )
    assert nested.status == 200
    attributes = (await nested.json())["data"]["attributes"]
    assert attributes["notes"] == "keep"
    assert "password" not in attributes
    assert sim.passwords[int(record["id"])]["password"] == "new"
    root = await client.patch(
        f"/passwords/{record['id']}", json=document(username="u2"), headers=WRITE
    )
    assert (await root.json())["data"]["attributes"]["username"] == "u2"
    assert (
        await client.patch(f"/passwords/{record['id']}", json=document(name=""), headers=WRITE)
    ).status == 422
    assert (
        await client.patch("/passwords/999", json=document(name="x"), headers=WRITE)
    ).status == 404
    synced = sim.add_password(50101, name="from PSA", password="p", psa_synced=True)
    refused = await client.patch(
        f"/passwords/{synced['id']}", json=document(password="x"), headers=WRITE
    )
    assert refused.status == 422


async def test_429_body_and_retry_after(serve: Serve, clock: FakeClock) -> None:
    assert RateLimit(3000, 300.0) == ITGlueSim.DEFAULT_RATE_LIMIT
    for header in (True, False):
        sim = make_sim(rate_limit=RateLimit(1, 300.0), clock=clock, retry_after_header=header)
        client = await serve(sim)
        await client.get(NESTED, headers=KEY)
        refused = await client.get(NESTED, headers=KEY)
        assert refused.status == 429
        assert (await refused.json())["errors"][0]["status"] == "429"
        assert ("Retry-After" in refused.headers) is header
