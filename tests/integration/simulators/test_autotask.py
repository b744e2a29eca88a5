"""Autotask: zone discovery, auth, contact queries and paging, create/update, thresholds."""

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.simulators import AutotaskSim, RateLimit

from .conftest import Client, FakeClock, Serve

HEADERS = {"ApiIntegrationCode": "CODE", "UserName": "api@acme.com", "Secret": "s3cret"}
QUERY = "/V1.0/Contacts/query"


def make_sim(**options: object) -> AutotaskSim:
    sim = AutotaskSim(
        username="api@acme.com",
        secret="s3cret",
        integration_code="CODE",
        **options,
    )
    sim.add_company(123, "Contoso")
    sim.add_company(456, "Fabrikam")
    return sim


@pytest.fixture
def sim() -> AutotaskSim:
    return make_sim()


@pytest.fixture
async def client(sim: AutotaskSim, serve: Serve) -> Client:
    return await serve(sim)


async def query(client: Client, filters: list[dict[str, Any]], **extra: Any) -> Any:
    resp = await client.post(QUERY, json={"filter": filters, **extra}, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_zone_information_answers_the_simulator_base_url(
    sim: AutotaskSim, client: Client
) -> None:
    resp = await client.get("/V1.0/zoneInformation", params={"user": "API@acme.com"})
    assert resp.status == 200
    zone = await resp.json()
    assert zone["url"] == str(client.make_url("/"))
    found = await client.session.get(
        zone["url"] + "V1.0/Companies/123", headers=HEADERS
    )  # the discovered base works as is
    assert (await found.json())["item"]["companyName"] == "Contoso"
    assert sim.requests[0].limited is False
    unknown = await client.get("/V1.0/zoneInformation", params={"user": "who@else"})
    assert unknown.status == 500


@pytest.mark.parametrize("drop", ["ApiIntegrationCode", "UserName", "Secret"])
async def test_each_credential_header_is_required(client: Client, drop: str) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != drop}
    resp = await client.post(QUERY, json={"filter": []}, headers=headers)
    assert resp.status == 401
    assert "errors" in await resp.json()
    wrong = await client.get("/V1.0/Contacts/1", headers={**HEADERS, drop: "nope"})
    assert wrong.status == 401


async def test_create_and_get_a_contact(client: Client) -> None:
    body = {
        "companyID": 123,
        "firstName": "Jo",
        "lastName": "Doe",
        "isActive": 1,
        "emailAddress": "a@b.com",
        "externalID": "our-key",
    }
    resp = await client.post("/V1.0/Companies/123/Contacts", json=body, headers=HEADERS)
    assert resp.status == 200
    created = await resp.json()
    assert set(created) == {"itemId"}
    got = await (await client.get(f"/V1.0/Contacts/{created['itemId']}", headers=HEADERS)).json()
    item = got["item"]
    assert item["id"] == created["itemId"]
    assert (item["companyID"], item["firstName"], item["lastName"]) == (123, "Jo", "Doe")
    assert (item["emailAddress"], item["externalID"], item["isActive"]) == (
        "a@b.com",
        "our-key",
        1,
    )
    for name in ("emailAddress2", "emailAddress3", "phone", "mobilePhone"):
        assert name in item


async def test_a_missing_contact_is_an_empty_item(client: Client) -> None:
    resp = await client.get("/V1.0/Contacts/424242", headers=HEADERS)
    assert resp.status == 200
    assert await resp.json() == {"item": None}


@pytest.mark.parametrize(
    ("company", "body"),
    [
        (123, {"lastName": "Doe", "isActive": 1}),
        (123, {"firstName": "Jo", "isActive": 1}),
        (999, {"firstName": "Jo", "lastName": "Doe", "isActive": 1}),
        (123, {"firstName": "Jo", "lastName": "Doe", "isActive": 1, "externalID": "x" * 64}),
        (123, {"firstName": "Jo", "lastName": "Doe", "isActive": 1, "email": "a@b.com"}),
        (123, {"firstName": "Jo", "lastName": "Doe", "isActive": 1, "companyID": 456}),
        (123, {"firstName": "Jo", "lastName": "Doe"}),
    ],
)
async def test_validation_errors_are_http_500_with_errors(
    client: Client, company: int, body: dict[str, Any]
) -> None:
    resp = await client.post(f"/V1.0/Companies/{company}/Contacts", json=body, headers=HEADERS)
    assert resp.status == 500
    errors = (await resp.json())["errors"]
    assert errors
    assert all(isinstance(e, str) for e in errors)


async def test_update_through_the_company_url(sim: AutotaskSim, client: Client) -> None:
    contact = sim.add_contact(123, firstName="Jo", lastName="Doe")
    resp = await client.patch(
        "/V1.0/Companies/123/Contacts",
        json={"id": contact["id"], "externalID": "k"},
        headers=HEADERS,
    )
    assert await resp.json() == {"itemId": contact["id"]}
    assert sim.contacts[contact["id"]]["externalID"] == "k"
    wrong = await client.patch(
        "/V1.0/Companies/456/Contacts", json={"id": contact["id"]}, headers=HEADERS
    )
    assert wrong.status == 500


async def test_query_filters(sim: AutotaskSim, client: Client) -> None:
    jo = sim.add_contact(123, firstName="Jo", lastName="Doe", emailAddress="a@b.com")
    sim.add_contact(123, firstName="Kim", lastName="Lee", emailAddress="kim@b.com", phone="1")
    sim.add_contact(456, firstName="Jo", lastName="Smith", emailAddress="jo@f.com", isActive=0)

    async def ids(*filters: dict[str, Any]) -> list[int]:
        return [i["id"] for i in (await query(client, list(filters)))["items"]]

    email = {"op": "eq", "field": "EmailAddress", "value": "A@B.COM"}
    assert await ids({"op": "eq", "field": "companyID", "value": 123}, email) == [jo["id"]]
    assert len(await ids({"op": "eq", "field": "companyid", "value": "123"})) == 2
    assert len(await ids({"op": "noteq", "field": "firstName", "value": "jo"})) == 1
    assert len(await ids({"op": "gt", "field": "companyID", "value": 200})) == 1
    assert len(await ids({"op": "gte", "field": "companyID", "value": 123})) == 3
    assert len(await ids({"op": "lt", "field": "companyID", "value": 456})) == 2
    assert len(await ids({"op": "lte", "field": "companyID", "value": 456})) == 3
    assert len(await ids({"op": "beginsWith", "field": "lastName", "value": "d"})) == 1
    assert len(await ids({"op": "endsWith", "field": "emailAddress", "value": "@b.com"})) == 2
    assert len(await ids({"op": "contains", "field": "emailAddress", "value": "IM@"})) == 1
    assert len(await ids({"op": "exist", "field": "phone"})) == 1
    assert len(await ids({"op": "notExist", "field": "phone"})) == 2
    assert len(await ids({"op": "in", "field": "lastName", "value": ["doe", "lee"]})) == 2
    assert len(await ids({"op": "notIn", "field": "lastName", "value": ["doe"]})) == 2
    assert len(await ids({"op": "eq", "field": "isActive", "value": True})) == 2
    either = {
        "op": "or",
        "items": [
            {"op": "eq", "field": "lastName", "value": "Doe"},
            {
                "op": "and",
                "items": [
                    {"op": "eq", "field": "firstName", "value": "Jo"},
                    {"op": "eq", "field": "companyID", "value": 456},
                ],
            },
        ],
    }
    assert len(await ids(either)) == 2


async def test_get_query_takes_the_search_as_json(sim: AutotaskSim, client: Client) -> None:
    sim.add_contact(123, firstName="Jo", lastName="Doe")
    search = json.dumps({"filter": [{"op": "eq", "field": "lastName", "value": "Doe"}]})
    resp = await client.get(QUERY, params={"search": search}, headers=HEADERS)
    assert [i["lastName"] for i in (await resp.json())["items"]] == ["Doe"]


@pytest.mark.parametrize(
    "body",
    [
        {"filter": []},
        {"filter": [{"op": "startsWith", "field": "lastName", "value": "D"}]},
        {"filter": [{"op": "isNull", "field": "lastName"}]},
        {"filter": [{"op": "eq", "field": "nickname", "value": "x"}]},
        {"filter": [{"op": "eq", "field": "companyID", "value": "abc"}]},
        {"filter": [{"op": "in", "field": "lastName", "value": "Doe"}]},
        {"filter": [{"op": "or", "items": []}]},
        {"filter": [{"op": "exist", "field": "id"}], "MaxRecords": 501},
    ],
)
async def test_invalid_queries_are_http_500(client: Client, body: dict[str, Any]) -> None:
    resp = await client.post(QUERY, json=body, headers=HEADERS)
    assert resp.status == 500
    assert (await resp.json())["errors"]


async def test_next_page_url_is_a_full_url_cursor(sim: AutotaskSim, client: Client) -> None:
    for n in range(12):
        sim.add_contact(123, firstName=f"P{n}", lastName="Paged")
    sim.add_contact(456, firstName="Other", lastName="Paged")
    page = await query(client, [{"op": "eq", "field": "companyID", "value": 123}], MaxRecords=5)
    seen = [i["id"] for i in page["items"]]
    assert page["pageDetails"]["count"] == 5
    assert page["pageDetails"]["requestCount"] == 5
    assert page["pageDetails"]["prevPageUrl"] is None
    pages = 1
    second: dict[str, Any] | None = None
    while page["pageDetails"]["nextPageUrl"]:
        next_url = page["pageDetails"]["nextPageUrl"]
        assert next_url.startswith("http://127.0.0.1:")
        page = await (await client.session.get(next_url, headers=HEADERS)).json()
        second = second or page
        seen += [i["id"] for i in page["items"]]
        pages += 1
    assert pages == 3
    assert page["pageDetails"]["count"] == 2
    assert len(seen) == len(set(seen)) == 12
    assert second is not None
    back = await (
        await client.session.get(second["pageDetails"]["prevPageUrl"], headers=HEADERS)
    ).json()
    assert [i["id"] for i in back["items"]] == seen[:5]
    count = await client.post(
        QUERY + "/count",
        json={"filter": [{"op": "eq", "field": "companyID", "value": 123}]},
        headers=HEADERS,
    )
    assert await count.json() == {"queryCount": 12}


async def test_include_fields_trims_items(sim: AutotaskSim, client: Client) -> None:
    sim.add_contact(123, firstName="Jo", lastName="Doe", emailAddress="a@b.com")
    page = await query(client, [{"op": "exist", "field": "id"}], IncludeFields=["emailAddress"])
    assert page["items"] == [{"id": page["items"][0]["id"], "emailAddress": "a@b.com"}]


async def test_more_than_three_in_flight_are_refused(serve: Serve) -> None:
    sim = make_sim(latency=0.2)
    client = await serve(sim)
    responses = await asyncio.gather(
        *(client.get("/V1.0/Companies/123", headers=HEADERS) for _ in range(5))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 200, 429, 429]
    refused = next(r for r in responses if r.status == 429)
    assert "thread" in (await refused.json())["errors"][0]
    assert "Retry-After" in refused.headers
    assert sim.max_concurrency >= 4  # a refusal is answered at once, before the next arrives
    assert sim.rejected_by_concurrency == 2


async def test_a_hung_request_frees_its_slot_when_the_client_gives_up(
    sim: AutotaskSim, client: Client
) -> None:
    sim.hang_next(1)
    with pytest.raises(asyncio.TimeoutError):
        await client.get(
            "/V1.0/Companies/123", headers=HEADERS, timeout=aiohttp.ClientTimeout(total=0.1)
        )
    for _ in range(40):
        if sim.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert sim.in_flight == 0
    assert sim.requests[0].outcome == "hang"


async def test_the_hourly_threshold(serve: Serve, clock: FakeClock) -> None:
    assert RateLimit(10_000, 3600.0) == AutotaskSim.DEFAULT_RATE_LIMIT
    assert AutotaskSim.DEFAULT_CONCURRENCY_LIMIT == 3
    sim = make_sim(rate_limit=RateLimit(3, 3600.0), clock=clock)
    client = await serve(sim)
    usage = await (await client.get("/V1.0/ThresholdInformation", headers=HEADERS)).json()
    assert usage["externalRequestThreshold"] == 3
    await client.get("/V1.0/zoneInformation", params={"user": "api@acme.com"})  # not counted
    await client.get("/V1.0/Companies/123", headers=HEADERS)
    await client.get("/V1.0/Companies/123", headers=HEADERS)
    refused = await client.get("/V1.0/Companies/123", headers=HEADERS)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "3600"
    assert sim.max_in_any_window() == 4


async def test_entity_information_reports_required_fields(client: Client) -> None:
    resp = await client.get("/V1.0/Contacts/entityInformation/fields", headers=HEADERS)
    fields = {f["name"]: f for f in (await resp.json())["fields"]}
    assert {n for n, f in fields.items() if f["isRequired"]} == {
        "companyID",
        "firstName",
        "lastName",
        "isActive",
    }
    assert fields["externalID"]["length"] == 50
