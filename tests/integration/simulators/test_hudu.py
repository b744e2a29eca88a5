"""Hudu: asset passwords (short-page paging, envelopes, 422s, the 200-null quirk), companies."""

from typing import Any

import pytest

from tests.simulators import HuduSim, RateLimit

from .conftest import Client, FakeClock, Serve

KEY = {"x-api-key": "hudu-key"}
PASSWORDS = "/api/v1/asset_passwords"


def make_sim(**options: object) -> HuduSim:
    sim = HuduSim(api_key="hudu-key", **options)
    sim.add_company(77, "Fabrikam Inc")
    sim.add_company(91, "Tailspin Toys")
    return sim


@pytest.fixture
def sim() -> HuduSim:
    return make_sim()


@pytest.fixture
async def client(sim: HuduSim, serve: Serve) -> Client:
    return await serve(sim)


async def listing(client: Client, **params: str) -> list[dict[str, Any]]:
    resp = await client.get(PASSWORDS, params=params, headers=KEY)
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["asset_passwords"]
    return items


async def test_a_bad_key_is_401(client: Client) -> None:
    for headers in ({"x-api-key": "nope"}, {}):
        resp = await client.get(PASSWORDS, headers=headers)
        assert resp.status == 401
        assert "error" in await resp.json()


async def test_create_answers_201_with_the_envelope(client: Client) -> None:
    body = {
        "asset_password": {
            "company_id": 77,
            "name": "jdoe (AD)",
            "username": "jdoe",
            "password": "S3cret!",
            "url": "https://portal",
            "description": "marker",
            "password_folder_id": None,
        }
    }
    resp = await client.post(PASSWORDS, json=body, headers=KEY)
    assert resp.status == 201
    created = (await resp.json())["asset_password"]
    assert isinstance(created["id"], int)
    assert (created["company_id"], created["company_name"]) == (77, "Fabrikam Inc")
    assert (created["username"], created["password"], created["description"]) == (
        "jdoe",
        "S3cret!",
        "marker",
    )
    assert created["archived"] is False
    got = await client.get(f"{PASSWORDS}/{created['id']}", headers=KEY)
    assert (await got.json())["asset_password"]["name"] == "jdoe (AD)"


async def test_a_missing_envelope_is_400_parameter_missing(client: Client) -> None:
    bodies: list[dict[str, Any]] = [{"name": "x"}, {"asset_password": {}}]
    for body in bodies:
        resp = await client.post(PASSWORDS, json=body, headers=KEY)
        assert resp.status == 400
        assert await resp.json() == {
            "error": "Parameter missing",
            "details": "param is missing or the value is empty: asset_password",
        }


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "n", "password": "p"},
        {"company_id": 77, "password": "p"},
        {"company_id": 77, "name": "n"},
        {"company_id": 999, "name": "n", "password": "p"},
        {"company_id": 77, "name": "n", "password": "p", "notes": "not a Hudu field"},
        {"company_id": 77, "name": "n", "password": "p", "password_folder_id": 5},
    ],
)
async def test_invalid_passwords_are_422_with_an_errors_string(
    client: Client, fields: dict[str, Any]
) -> None:
    resp = await client.post(PASSWORDS, json={"asset_password": fields}, headers=KEY)
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert isinstance(errors, str)
    assert errors


async def test_a_missing_password_is_200_null(client: Client) -> None:
    resp = await client.get(f"{PASSWORDS}/4242", headers=KEY)
    assert resp.status == 200
    assert await resp.text() == "null"
    assert await resp.json() is None


async def test_put_updates_with_the_same_envelope(sim: HuduSim, client: Client) -> None:
    record = sim.add_password(company_id=77, name="n", username="u", password="old")
    resp = await client.put(
        f"{PASSWORDS}/{record['id']}", json={"asset_password": {"password": "new"}}, headers=KEY
    )
    assert resp.status == 200
    updated = (await resp.json())["asset_password"]
    assert (updated["password"], updated["username"]) == ("new", "u")
    missing = await client.put(
        f"{PASSWORDS}/999", json={"asset_password": {"name": "x"}}, headers=KEY
    )
    assert missing.status == 404
    blank = await client.put(
        f"{PASSWORDS}/{record['id']}", json={"asset_password": {"name": ""}}, headers=KEY
    )
    assert blank.status == 422
    assert (await client.put(f"{PASSWORDS}/{record['id']}", json={}, headers=KEY)).status == 400
    archived = await client.put(f"{PASSWORDS}/{record['id']}/archive", headers=KEY)
    assert (await archived.json())["asset_password"]["archived"] is True


async def test_a_short_page_ends_the_list(sim: HuduSim, client: Client) -> None:
    for n in range(30):
        sim.add_password(company_id=77, name=f"acct{n}", username=f"u{n}", password="p")
    sim.add_password(company_id=91, name="elsewhere", password="p")
    seen: list[int] = []
    page = 1
    while True:
        items = await listing(client, company_id="77", page=str(page))
        seen += [i["id"] for i in items]
        if len(items) < 25:  # the default page size
            break
        page += 1
    assert page == 2
    assert len(seen) == len(set(seen)) == 30
    assert len(await listing(client, company_id="77", page_size="10", page="3")) == 10
    assert await listing(client, company_id="77", page_size="10", page="4") == []


async def test_filters(sim: HuduSim, client: Client) -> None:
    sim.add_password(company_id=77, name="jdoe (AD)", username="jdoe", password="p")
    sim.add_password(company_id=77, name="Wi-Fi", username="guest", password="p")
    sim.add_password(company_id=77, name="old jdoe", password="p", archived=True)
    sim.add_password(company_id=91, name="jdoe (AD)", password="p")
    assert [i["username"] for i in await listing(client, company_id="77", name="jdoe (AD)")] == [
        "jdoe"
    ]
    assert await listing(client, company_id="77", name="JDOE (AD)") == []  # exact
    assert len(await listing(client, company_id="77", search="JDOE")) == 1
    assert await listing(client, company_id="77", search="guest") == []  # name only
    assert [i["name"] for i in await listing(client, archived="true")] == ["old jdoe"]
    assert len(await listing(client, search="jdoe")) == 2
    assert (await client.get(PASSWORDS, params={"company_id": "x"}, headers=KEY)).status == 400


async def test_companies(client: Client) -> None:
    company = await client.get("/api/v1/companies/77", headers=KEY)
    assert (await company.json())["company"]["name"] == "Fabrikam Inc"
    assert (await client.get("/api/v1/companies/5", headers=KEY)).status == 404
    listed = await (await client.get("/api/v1/companies", headers=KEY)).json()
    assert [c["id"] for c in listed["companies"]] == [77, 91]


async def test_the_per_minute_limit(serve: Serve, clock: FakeClock) -> None:
    assert RateLimit(300, 60.0) == HuduSim.DEFAULT_RATE_LIMIT
    sim = make_sim(rate_limit=RateLimit(2, 60.0), clock=clock)
    client = await serve(sim)
    for _ in range(2):
        await client.get(PASSWORDS, headers=KEY)
    refused = await client.get(PASSWORDS, headers=KEY)
    assert refused.status == 429
    assert await refused.text() == "Retry later\n"
    assert refused.headers["Retry-After"] == "60"
