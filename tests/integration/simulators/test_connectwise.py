"""ConnectWise Manage: auth, contacts (conditions, paging, create, patch), companies."""

import base64
import re

import pytest
from aiohttp import web

from tests.simulators import ConnectWiseSim, RateLimit

from .conftest import Client, FakeClock, Serve

CLIENT_ID = "3f1c9a52-7d4e-4b8a-9c61-0d2e5f7a8b90"
BASIC = base64.b64encode(b"acme+pub:priv").decode()
HEADERS = {"Authorization": f"Basic {BASIC}", "clientId": CLIENT_ID}
CONTACTS = "/company/contacts"
NEW_CONTACT = {
    "firstName": "Jo",
    "lastName": "Doe",
    "company": {"id": 123},
    "communicationItems": [
        {"type": {"id": 1}, "value": "a@b.com", "defaultFlag": True, "communicationType": "Email"}
    ],
}


def make_sim(**options: object) -> ConnectWiseSim:
    sim = ConnectWiseSim(
        company_id="Acme",
        public_key="pub",
        private_key="priv",
        client_id=CLIENT_ID,
        **options,
    )
    sim.add_company(123, "Contoso Ltd", "Contoso")
    sim.add_company(456, "Fabrikam Inc", "Fabrikam")
    return sim


@pytest.fixture
def sim() -> ConnectWiseSim:
    return make_sim()


@pytest.fixture
async def client(sim: ConnectWiseSim, serve: Serve) -> Client:
    return await serve(sim)


async def search(client: Client, **params: str) -> list[dict[str, object]]:
    resp = await client.get(CONTACTS, params=params, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    result: list[dict[str, object]] = await resp.json()
    return result


async def test_a_missing_client_id_is_401_saying_client_id_is_required(client: Client) -> None:
    resp = await client.get(CONTACTS, headers={"Authorization": f"Basic {BASIC}"})
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "Unauthorized"
    assert "clientId" in body["message"]
    wrong = await client.get(CONTACTS, headers={**HEADERS, "clientId": "other"})
    assert wrong.status == 401


@pytest.mark.parametrize(
    "credentials", ["acme+pub:wrong", "other+pub:priv", "acme+nope:priv", "acmepub:priv"]
)
async def test_wrong_basic_credentials_are_401(client: Client, credentials: str) -> None:
    header = "Basic " + base64.b64encode(credentials.encode()).decode()
    resp = await client.get(CONTACTS, headers={**HEADERS, "Authorization": header})
    assert resp.status == 401
    assert (await resp.json())["code"] == "Unauthorized"


async def test_the_company_id_is_case_insensitive(client: Client) -> None:
    header = "Basic " + base64.b64encode(b"ACME+pub:priv").decode()
    resp = await client.get(CONTACTS, headers={**HEADERS, "Authorization": header})
    assert resp.status == 200


async def test_create_answers_the_documented_contact_shape(client: Client) -> None:
    resp = await client.post(CONTACTS, json=NEW_CONTACT, headers=HEADERS)
    assert resp.status == 201
    contact = await resp.json()
    assert contact["firstName"] == "Jo"
    assert contact["lastName"] == "Doe"
    assert contact["company"]["id"] == 123
    assert contact["company"]["identifier"] == "Contoso"
    assert contact["company"]["name"] == "Contoso Ltd"
    [item] = contact["communicationItems"]
    assert item["type"] == {"id": 1, "name": "Email"}
    assert (item["value"], item["defaultFlag"], item["communicationType"]) == (
        "a@b.com",
        True,
        "Email",
    )
    assert isinstance(item["id"], int)
    [custom] = contact["customFields"]
    assert custom["caption"] == "AccountKey"
    assert {"id", "type", "entryMethod", "numberOfDecimals"} <= set(custom)
    assert "value" not in custom  # nulls are not serialised
    assert {"lastUpdated", "dateEntered"} <= set(contact["_info"])
    fetched = await client.get(f"{CONTACTS}/{contact['id']}", headers=HEADERS)
    assert await fetched.json() == contact


async def test_create_without_first_name_is_null_or_empty(client: Client) -> None:
    resp = await client.post(CONTACTS, json={"lastName": "Doe"}, headers=HEADERS)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "InvalidObject"
    assert isinstance(body["message"], str)
    [error] = body["errors"]
    assert error["code"] == "NullOrEmpty"
    assert (error["resource"], error["field"]) == ("contact", "firstName")
    assert isinstance(error["message"], str)


@pytest.mark.parametrize(
    "body",
    [
        {**NEW_CONTACT, "company": {"id": 999}},
        {**NEW_CONTACT, "firstName": "J" * 31},
        {**NEW_CONTACT, "communicationItems": [{"value": "a@b.com"}]},
        {**NEW_CONTACT, "communicationItems": [{"type": {"id": 1}, "value": "not-an-email"}]},
        {**NEW_CONTACT, "customFields": [{"id": 999, "value": "x"}]},
    ],
)
async def test_invalid_contacts_are_400(client: Client, body: dict[str, object]) -> None:
    resp = await client.post(CONTACTS, json=body, headers=HEADERS)
    assert resp.status == 400
    assert (await resp.json())["code"] == "InvalidObject"


async def test_an_unknown_contact_is_404(client: Client) -> None:
    resp = await client.get(f"{CONTACTS}/999", headers=HEADERS)
    assert resp.status == 404
    assert (await resp.json())["code"] == "NotFound"


async def test_conditions_select_contacts(sim: ConnectWiseSim, client: Client) -> None:
    jo = sim.add_contact("Jo", "Doe", company_id=123, email="jo@contoso.com")
    sim.add_contact("Jo", "Smith", company_id=123, phone="555-1234")
    sim.add_contact("Jo", "Doe", company_id=456, email="jo@fabrikam.com")
    sim.add_contact("Kim", None, company_id=123)

    def ids(contacts: list[dict[str, object]]) -> list[object]:
        return [c["id"] for c in contacts]

    assert len(await search(client, conditions="company/id=123")) == 3
    assert ids(
        await search(client, conditions='company/id=123 AND firstName="jo" AND lastName="DOE"')
    ) == [jo["id"]]
    assert len(await search(client, conditions='lastName="Doe" OR lastName="Smith"')) == 3
    assert (
        len(
            await search(
                client, conditions='company/id = 123 and (lastName="Doe" or lastName = null)'
            )
        )
        == 2
    )
    assert len(await search(client, conditions='lastName like "Sm*"')) == 1
    assert len(await search(client, conditions='company/identifier != "Contoso"')) == 1
    assert (
        len(await search(client, conditions="company/id in (123, 456) AND NOT lastName = null"))
        == 3
    )
    assert len(await search(client, conditions='firstName contains "i"')) == 1


async def test_child_conditions_need_one_item_matching_all(
    sim: ConnectWiseSim, client: Client
) -> None:
    # The phone item has the value, the email item the type: no single item matches both.
    sim.create_contact(
        {
            "firstName": "Tricky",
            "company": {"id": 123},
            "communicationItems": [
                {"type": {"id": 2}, "value": "a@b.com"},
                {"type": {"id": 1}, "value": "other@b.com"},
            ],
        }
    )
    jo = sim.add_contact("Jo", "Doe", company_id=123, email="A@B.com")
    child = 'communicationItems/value="a@b.com" AND communicationItems/communicationType="Email"'
    found = await search(client, conditions="company/id=123", childConditions=child)
    assert [c["id"] for c in found] == [jo["id"]]


async def test_custom_field_conditions(sim: ConnectWiseSim, client: Client) -> None:
    keyed = sim.add_contact("Jo", "Doe", company_id=123, custom_fields={"AccountKey": "k-1"})
    sim.add_contact("Jo", "Doe", company_id=123)
    found = await search(client, customFieldConditions='caption="AccountKey" AND value="k-1"')
    assert [c["id"] for c in found] == [keyed["id"]]
    assert found[0]["customFields"][0]["value"] == "k-1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("param", "condition"),
    [
        ("conditions", 'firstName="Jo'),
        ("conditions", "firstName="),
        ("conditions", 'firstName="Jo" AND'),
        ("conditions", '(firstName="Jo"'),
        ("conditions", "firstName=Jo"),
        ("conditions", 'nickname="Jo"'),
        ("conditions", 'communicationItems/value="a@b.com"'),
        ("childConditions", 'firstName="Jo"'),
        ("conditions", 'firstName == "Jo"'),
    ],
)
async def test_unparsable_or_invalid_conditions_are_400(
    client: Client, param: str, condition: str
) -> None:
    resp = await client.get(CONTACTS, params={param: condition}, headers=HEADERS)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "InvalidObject"
    assert body["errors"][0]["field"] == param


async def test_pages_follow_the_link_header(sim: ConnectWiseSim, client: Client) -> None:
    for n in range(23):
        sim.add_contact(f"P{n}", "Paged", company_id=123)
    sim.add_contact("Other", "Company", company_id=456)
    url: str | None = CONTACTS + "?conditions=company/id%3D123&pageSize=10"
    seen: list[object] = []
    pages = 0
    while url:
        resp = await client.get(url, headers=HEADERS)
        assert resp.status == 200
        seen += [c["id"] for c in await resp.json()]
        pages += 1
        link = resp.headers.get("Link", "")
        links = {rel: target for target, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', link)}
        url = links.get("next")
        if url:
            assert "conditions=company/id%3D123" in url
            assert "last" in links
            url = url.split(str(client.make_url("")).rstrip("/"), 1)[-1]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 23
    beyond = await client.get(CONTACTS + "?page=9&pageSize=10", headers=HEADERS)
    assert await beyond.json() == []
    assert "next" not in beyond.headers.get("Link", "")


async def test_page_size_defaults_to_25_and_order_by_sorts(
    sim: ConnectWiseSim, client: Client
) -> None:
    for n in range(30):
        sim.add_contact(f"F{n:02d}", "Z", company_id=123)
    assert len(await search(client)) == 25
    ordered = await search(client, orderBy="firstName desc", pageSize="3", fields="id,firstName")
    assert [c["firstName"] for c in ordered] == ["F29", "F28", "F27"]
    assert set(ordered[0]) == {"id", "firstName"}
    bad = await client.get(CONTACTS, params={"orderBy": "nope asc"}, headers=HEADERS)
    assert bad.status == 400
    assert (await client.get(CONTACTS, params={"pageSize": "x"}, headers=HEADERS)).status == 400


async def test_patch_applies_json_patch(sim: ConnectWiseSim, client: Client) -> None:
    contact = sim.add_contact("Jo", "Doe", company_id=123, email="jo@contoso.com")
    url = f"{CONTACTS}/{contact['id']}"
    resp = await client.patch(
        url,
        json=[
            {"op": "replace", "path": "lastName", "value": "Dough"},
            {"op": "replace", "path": "/customFields", "value": [{"id": 7, "value": "key"}]},
            {"op": "replace", "path": "company/id", "value": 456},
        ],
        headers=HEADERS,
    )
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert patched["lastName"] == "Dough"
    assert patched["customFields"][0]["value"] == "key"
    assert patched["company"]["identifier"] == "Fabrikam"
    assert patched["communicationItems"][0]["value"] == "jo@contoso.com"
    for ops in (
        {"op": "replace", "path": "lastName", "value": "x"},
        [{"op": "move", "path": "lastName"}],
        [{"op": "remove", "path": "firstName"}],
        [{"op": "replace", "path": "id", "value": 5}],
    ):
        assert (await client.patch(url, json=ops, headers=HEADERS)).status == 400
    assert (await client.patch(f"{CONTACTS}/999", json=[], headers=HEADERS)).status == 404


async def test_companies_and_count(sim: ConnectWiseSim, client: Client) -> None:
    company = await client.get("/company/companies/123", headers=HEADERS)
    assert (await company.json())["identifier"] == "Contoso"
    assert (await client.get("/company/companies/9", headers=HEADERS)).status == 404
    listed = await client.get(
        "/company/companies", params={"conditions": 'name like "Fab*"'}, headers=HEADERS
    )
    assert [c["id"] for c in await listed.json()] == [456]
    sim.add_contact("Jo", company_id=123)
    count = await client.get(CONTACTS + "/count?conditions=company/id%3D123", headers=HEADERS)
    assert await count.json() == {"count": 1}


async def test_the_default_limit_is_60_per_minute_with_retry_after(
    serve: Serve, clock: FakeClock
) -> None:
    assert RateLimit(60, 60.0) == ConnectWiseSim.DEFAULT_RATE_LIMIT
    sim = make_sim(clock=clock)
    client = await serve(sim)
    for _ in range(60):
        await client.get("/company/companies/123", headers=HEADERS)
    refused = await client.get("/company/companies/123", headers=HEADERS)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert (await refused.json())["code"] == "TooManyRequests"


async def test_it_can_be_mounted_under_the_codebase_path(serve: Serve) -> None:
    sim = make_sim()
    root = web.Application()
    root.add_subapp("/v4_6_release/apis/3.0", sim.app)
    client = await serve(root)
    for n in range(3):
        sim.add_contact(f"M{n}", company_id=123)
    resp = await client.get("/v4_6_release/apis/3.0/company/contacts?pageSize=2", headers=HEADERS)
    assert "/v4_6_release/apis/3.0/company/contacts?pageSize=2&page=2" in resp.headers["Link"]
    assert sim.requests[-1].path == CONTACTS
