"""Microsoft Graph: Entra ID tokens, user lookup by UPN, password resets, throttling."""

from typing import Any

import pytest

from tests.simulators import GraphSim, RateLimit
from tests.simulators.graph import SYNCED_MESSAGE

from .conftest import Client, FakeClock, Serve

TENANT = "6d2f1c7e-3b5a-4e8f-9a1d-2c4b6e8f0a13"
TOKEN_PATH = f"/login/{TENANT}/oauth2/v2.0/token"
FORM = {
    "client_id": "app",
    "client_secret": "secret",
    "scope": "https://graph.microsoft.com/.default",
    "grant_type": "client_credentials",
}
GOOD_PASSWORD = "N3w-Passw0rd!"


def make_sim(**options: object) -> GraphSim:
    sim = GraphSim(
        tenant_id=TENANT,
        client_id="app",
        client_secret="secret",
        tenant_domains=("contoso.onmicrosoft.com",),
        **options,  # type: ignore[arg-type]
    )
    sim.add_user(
        "jo.doe@contoso.com", display_name="Jo Doe", id="11111111-0000-0000-0000-000000000001"
    )
    sim.add_user("synced@contoso.com", on_premises_sync_enabled=True)
    return sim


@pytest.fixture
def sim(clock: FakeClock) -> GraphSim:
    return make_sim(clock=clock)


@pytest.fixture
async def client(sim: GraphSim, serve: Serve) -> Client:
    return await serve(sim)


async def bearer(client: Client, path: str = TOKEN_PATH) -> dict[str, str]:
    resp = await client.post(path, data=FORM)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    return {"Authorization": f"Bearer {body['access_token']}"}


def graph_error(body: Any, code: str) -> None:
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert {"request-id", "date"} <= set(body["error"]["innerError"])


@pytest.mark.parametrize(
    ("path", "form", "status", "error"),
    [
        (TOKEN_PATH, {"client_secret": "wrong"}, 401, "invalid_client"),
        (TOKEN_PATH, {"client_id": "other"}, 400, "unauthorized_client"),
        (TOKEN_PATH, {"scope": "User.ReadWrite.All"}, 400, "invalid_scope"),
        (TOKEN_PATH, {"grant_type": "password"}, 400, "unsupported_grant_type"),
        ("/login/other-tenant/oauth2/v2.0/token", {}, 400, "invalid_request"),
    ],
)
async def test_token_errors(
    client: Client, path: str, form: dict[str, str], status: int, error: str
) -> None:
    resp = await client.post(path, data={**FORM, **form})
    assert resp.status == status
    body = await resp.json()
    assert body["error"] == error
    assert body["error_description"].startswith("AADSTS")


async def test_a_tenant_domain_also_gets_tokens(client: Client) -> None:
    await bearer(client, "/login/contoso.onmicrosoft.com/oauth2/v2.0/token")


async def test_the_api_needs_a_live_token(sim: GraphSim, client: Client, clock: FakeClock) -> None:
    empty = await client.get("/v1.0/users/jo.doe@contoso.com")
    assert empty.status == 401
    graph_error(await empty.json(), "InvalidAuthenticationToken")
    headers = await bearer(client)
    assert (await client.get("/v1.0/users/jo.doe@contoso.com", headers=headers)).status == 200
    clock.advance(3599)
    expired = await client.get("/v1.0/users/jo.doe@contoso.com", headers=headers)
    assert expired.status == 401
    graph_error(await expired.json(), "InvalidAuthenticationToken")


async def test_get_user_by_upn_with_select(client: Client) -> None:
    headers = {**await bearer(client), "client-request-id": "my-id"}
    resp = await client.get(
        "/v1.0/users/JO.DOE@contoso.com",
        params={
            "$select": "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,displayName,mail"
        },
        headers=headers,
    )
    assert resp.status == 200
    assert resp.headers["client-request-id"] == "my-id"
    assert resp.headers["request-id"]
    user = await resp.json()
    assert user.pop("@odata.context").endswith("$entity")
    assert user == {
        "id": "11111111-0000-0000-0000-000000000001",
        "userPrincipalName": "jo.doe@contoso.com",
        "accountEnabled": True,
        "onPremisesSyncEnabled": None,
        "displayName": "Jo Doe",
        "mail": "jo.doe@contoso.com",
    }
    by_id = await client.get("/v1.0/users/11111111-0000-0000-0000-000000000001", headers=headers)
    default = await by_id.json()
    assert default["userPrincipalName"] == "jo.doe@contoso.com"
    assert "accountEnabled" not in default  # not in Graph's default property set
    assert "onPremisesSyncEnabled" not in default
    bad = await client.get("/v1.0/users/jo.doe@contoso.com?$select=nope", headers=headers)
    assert bad.status == 400


async def test_an_unknown_user_is_404_resource_not_found(client: Client) -> None:
    resp = await client.get("/v1.0/users/ghost@contoso.com", headers=await bearer(client))
    assert resp.status == 404
    graph_error(await resp.json(), "Request_ResourceNotFound")


async def test_filter_by_upn(client: Client) -> None:
    headers = await bearer(client)
    resp = await client.get(
        "/v1.0/users",
        params={"$filter": "userPrincipalName eq 'jo.doe@contoso.com'", "$select": "id"},
        headers=headers,
    )
    assert (await resp.json())["value"] == [{"id": "11111111-0000-0000-0000-000000000001"}]
    bad = await client.get(
        "/v1.0/users", params={"$filter": "startswith(mail,'jo')"}, headers=headers
    )
    assert bad.status == 400


async def test_patch_sets_the_password_and_records_it(sim: GraphSim, client: Client) -> None:
    resp = await client.patch(
        "/v1.0/users/jo.doe@contoso.com",
        json={
            "passwordProfile": {"password": GOOD_PASSWORD, "forceChangePasswordNextSignIn": False}
        },
        headers=await bearer(client),
    )
    assert resp.status == 204
    assert await resp.read() == b""
    [change] = sim.password_changes
    assert change["password"] == GOOD_PASSWORD
    assert change["forceChangePasswordNextSignIn"] is False
    assert change["userPrincipalName"] == "jo.doe@contoso.com"
    assert sim.last_password("JO.DOE@contoso.com") == GOOD_PASSWORD
    state = await (await client.get("/_sim/state")).json()
    assert state["password_changes"][0]["password"] == GOOD_PASSWORD


async def test_a_synced_user_refuses_the_password(sim: GraphSim, client: Client) -> None:
    resp = await client.patch(
        "/v1.0/users/synced@contoso.com",
        json={
            "passwordProfile": {"password": GOOD_PASSWORD, "forceChangePasswordNextSignIn": False}
        },
        headers=await bearer(client),
    )
    assert resp.status == 400
    body = await resp.json()
    graph_error(body, "Request_BadRequest")
    assert body["error"]["message"] == SYNCED_MESSAGE
    assert sim.password_changes == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"passwordProfile": {"password": "weak"}}, 400),
        ({"passwordProfile": {"forceChangePasswordNextSignIn": True}}, 400),
        ({"passwordProfile": {"password": GOOD_PASSWORD, "extra": 1}}, 400),
        ({"nickname": "x"}, 400),
        ({}, 400),
    ],
)
async def test_invalid_patches(client: Client, body: dict[str, Any], status: int) -> None:
    resp = await client.patch(
        "/v1.0/users/jo.doe@contoso.com", json=body, headers=await bearer(client)
    )
    assert resp.status == status
    assert "error" in await resp.json()


async def test_missing_privileges_are_403(serve: Serve) -> None:
    sim = make_sim(privileged=False)
    client = await serve(sim)
    resp = await client.patch(
        "/v1.0/users/jo.doe@contoso.com",
        json={"passwordProfile": {"password": GOOD_PASSWORD}},
        headers=await bearer(client),
    )
    assert resp.status == 403
    graph_error(await resp.json(), "Authorization_RequestDenied")


async def test_throttling_with_and_without_retry_after(serve: Serve, clock: FakeClock) -> None:
    assert GraphSim.DEFAULT_RATE_LIMIT is None
    for header in (True, False):
        sim = make_sim(rate_limit=RateLimit(1, 10.0), clock=clock, retry_after_header=header)
        client = await serve(sim)
        headers = await bearer(client)
        await bearer(client)  # tokens are not counted
        assert (await client.get("/v1.0/users/jo.doe@contoso.com", headers=headers)).status == 200
        refused = await client.get("/v1.0/users/jo.doe@contoso.com", headers=headers)
        assert refused.status == 429
        graph_error(await refused.json(), "TooManyRequests")
        assert ("Retry-After" in refused.headers) is header
    sim.fail_next(1, 429, retry_after=41)
    injected = await client.get("/v1.0/users/x", headers=headers)
    assert (injected.status, injected.headers["Retry-After"]) == (429, "41")


async def test_autoprovision_creates_users_on_first_lookup(serve: Serve) -> None:
    sim = make_sim(autoprovision={"hybrid.example.com": True, "example.com": False})
    client = await serve(sim)
    headers = await bearer(client)
    params = {"$select": "onPremisesSyncEnabled"}
    cloud = await client.get(
        "/v1.0/users/a.b0@customer0.example.com", params=params, headers=headers
    )
    assert (await cloud.json())["onPremisesSyncEnabled"] is None
    synced = await client.get("/v1.0/users/c.d1@hybrid.example.com", params=params, headers=headers)
    assert (await synced.json())["onPremisesSyncEnabled"] is True
    assert (await client.get("/v1.0/users/x@elsewhere.org", headers=headers)).status == 404
