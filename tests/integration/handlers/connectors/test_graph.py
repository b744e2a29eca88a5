"""The Microsoft Graph connector against the Graph simulator, over loopback HTTP
(Entra ID's token endpoint included)."""

import asyncio
import logging
from dataclasses import replace

import pytest

from services.handlers.adapters.connectors import graph
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import RetryPolicy
from services.handlers.domain.errors import (
    VendorAuthError,
    VendorError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.service_layer.ports import IdentityConnector
from tests.simulators import GraphSim
from tests.simulators.graph import COMPLEXITY_MESSAGE, SYNCED_MESSAGE

from .conftest import Serve

PREFIX = "/graph"
TENANT = "7d1f0c55-3b2a-4e8f-9c61-0a2b4c6d8e10"
CLIENT = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
SECRET = "graph-Secret~8Qz.k2"
CREDENTIALS = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
PASSWORD = "Summer-Breeze-42!"
TOKEN = f"/login/{TENANT}/oauth2/v2.0/token"
USERS = "/v1.0/users"


@pytest.fixture
def sim() -> GraphSim:
    return GraphSim(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=SECRET,
        tenant_domains=("contoso.onmicrosoft.com",),
    )


@pytest.fixture
async def origin(sim: GraphSim, serve: Serve) -> str:
    return await serve(sim, PREFIX)


def build(
    origin: str,
    context: ConnectContext,
    *,
    credentials: dict[str, str] | None = None,
    token_url: str | None = "{origin}/login/{tenant_id}/oauth2/v2.0/token",
) -> IdentityConnector:
    settings = {} if token_url is None else {"token_url": token_url.replace("{origin}", origin)}
    config = IntegrationConfig(
        partner_id="partner-1",
        provider="m365",
        base_url=f"{origin}/v1.0",
        settings=settings,
        credentials=CREDENTIALS if credentials is None else credentials,
    )
    return graph.connect(config, context)


@pytest.fixture
def m365(origin: str, context: ConnectContext) -> IdentityConnector:
    return build(origin, context)


def tokens(sim: GraphSim) -> int:
    return len(sim.find_requests("POST", "/login/"))


def statuses(sim: GraphSim, method: str) -> list[int | None]:
    return [r.status for r in sim.find_requests(method, USERS)]


def shown(error: BaseException, *more: object) -> str:
    """Everything a caller (or a log) could show of an error."""
    return " ".join((str(error), repr(error), str(error.args), *(str(m) for m in more)))


# -- find_user --------------------------------------------------------------------


async def test_find_user_by_upn(sim: GraphSim, m365: IdentityConnector) -> None:
    jane = sim.add_user("jane.doe@contoso.example")

    found = await m365.find_user("Jane.Doe@contoso.example")

    assert found is not None
    assert (found.id, found.user_principal_name, found.synced) == (
        jane["id"],
        "jane.doe@contoso.example",
        False,
    )
    (request,) = sim.find_requests("GET", USERS)
    assert request.path == f"{USERS}/Jane.Doe@contoso.example"
    assert request.query == {"$select": "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled"}
    assert request.headers["Authorization"].startswith("Bearer ")
    (token,) = sim.find_requests("POST", "/login/")
    assert token.path == TOKEN
    assert token.body == {
        "client_id": CLIENT,
        "client_secret": SECRET,
        "scope": "https://graph.microsoft.com/.default",
        "grant_type": "client_credentials",
    }


async def test_a_synced_user_is_flagged(sim: GraphSim, m365: IdentityConnector) -> None:
    sim.add_user("sam@contoso.example", on_premises_sync_enabled=True, account_enabled=False)

    found = await m365.find_user("sam@contoso.example")

    assert found is not None
    assert found.synced is True
    assert isinstance(found, graph.GraphUser)
    assert found.account_enabled is False


async def test_an_unknown_upn_is_none(sim: GraphSim, m365: IdentityConnector) -> None:
    sim.add_user("jane@contoso.example", mail="jane.alias@contoso.example")

    assert await m365.find_user("nobody@contoso.example") is None
    assert await m365.find_user("jane.alias@contoso.example") is None  # a mail, not a UPN
    assert statuses(sim, "GET") == [404, 404]


async def test_a_guest_upn_is_percent_encoded(sim: GraphSim, m365: IdentityConnector) -> None:
    guest = sim.add_user("jo_fabrikam.example#EXT#@contoso.onmicrosoft.com")

    found = await m365.find_user("jo_fabrikam.example#EXT#@contoso.onmicrosoft.com")

    assert found is not None
    assert found.id == guest["id"]
    assert sim.find_requests("GET", USERS)[0].path == f"{USERS}/{guest['userPrincipalName']}"


async def test_a_404_that_is_not_graphs_is_rejected(sim: GraphSim, m365: IdentityConnector) -> None:
    sim.fail_next(1, 404, body="<html>Not Found</html>", path_prefix=USERS)

    with pytest.raises(VendorRejected) as caught:
        await m365.find_user("jane@contoso.example")

    assert caught.value.status == 404
    assert "base_url" in caught.value.message


# -- set_password -----------------------------------------------------------------


async def test_set_password_is_recorded(sim: GraphSim, m365: IdentityConnector) -> None:
    jane = sim.add_user("jane@contoso.example")

    await m365.set_password(jane["id"], PASSWORD)

    assert sim.last_password("jane@contoso.example") == PASSWORD
    (change,) = sim.password_changes
    assert change["forceChangePasswordNextSignIn"] is False
    (patch,) = sim.find_requests("PATCH", USERS)
    assert patch.path == f"{USERS}/{jane['id']}"
    assert patch.body == {
        "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False}
    }
    assert patch.headers["Content-Type"] == "application/json"
    assert patch.status == 204


async def test_a_synced_user_is_rejected_with_graphs_message(
    sim: GraphSim, m365: IdentityConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sam = sim.add_user("sam@contoso.example", on_premises_sync_enabled=True)

    with pytest.raises(VendorRejected) as caught:
        await m365.set_password(sam["id"], PASSWORD)

    assert caught.value.status == 400
    assert caught.value.message == f"Request_BadRequest: {SYNCED_MESSAGE}"
    assert sim.password_changes == []
    assert PASSWORD not in shown(caught.value, caplog.text, m365)


async def test_a_weak_password_is_rejected(
    sim: GraphSim, m365: IdentityConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jane = sim.add_user("jane@contoso.example")

    with pytest.raises(VendorRejected) as caught:
        await m365.set_password(jane["id"], "weakpass")

    assert caught.value.status == 400
    assert caught.value.message == f"Request_BadRequest: {COMPLEXITY_MESSAGE}"
    assert "weakpass" not in shown(caught.value, caplog.text)
    assert sim.password_changes == []


async def test_an_app_without_the_permission_is_an_auth_error(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    sim.privileged = False
    jane = sim.add_user("jane@contoso.example")

    with pytest.raises(VendorAuthError) as caught:
        await m365.set_password(jane["id"], PASSWORD)

    assert caught.value.status == 403
    assert caught.value.message.startswith("Authorization_RequestDenied: ")
    assert PASSWORD not in shown(caught.value)
    assert statuses(sim, "PATCH") == [403]  # not retried
    assert tokens(sim) == 1


async def test_a_password_graph_would_echo_is_scrubbed(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    jane = sim.add_user("jane@contoso.example")
    echo = {"error": {"code": "Request_BadRequest", "message": f"bad value {PASSWORD}"}}
    sim.fail_next(1, 400, body=echo, method="PATCH")

    with pytest.raises(VendorRejected) as caught:
        await m365.set_password(jane["id"], PASSWORD)

    assert caught.value.message == "Request_BadRequest: bad value [hidden]"
    assert PASSWORD not in shown(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


# -- throttling and retries -------------------------------------------------------


async def test_a_429_storm_then_success(sim: GraphSim, m365: IdentityConnector) -> None:
    jane = sim.add_user("jane@contoso.example")
    sim.fail_next(3, 429, retry_after=0, method="PATCH")

    await m365.set_password(jane["id"], PASSWORD)

    assert statuses(sim, "PATCH") == [429, 429, 429, 204]
    assert len(sim.password_changes) == 1


async def test_a_429_without_retry_after_is_retried(sim: GraphSim, m365: IdentityConnector) -> None:
    sim.add_user("jane@contoso.example")
    sim.fail_next(2, 429, method="GET")  # no Retry-After: the base client's back-off

    found = await m365.find_user("jane@contoso.example")

    assert found is not None
    assert statuses(sim, "GET") == [429, 429, 200]


async def test_a_5xx_on_the_password_write_is_retried(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    jane = sim.add_user("jane@contoso.example")
    sim.fail_next(1, 503, method="PATCH")

    await m365.set_password(jane["id"], PASSWORD)  # idempotent: no MaybeDone

    assert statuses(sim, "PATCH") == [503, 204]


# -- tokens -----------------------------------------------------------------------


async def test_one_token_serves_many_calls(sim: GraphSim, m365: IdentityConnector) -> None:
    jane = sim.add_user("jane@contoso.example")

    await asyncio.gather(*(m365.find_user("jane@contoso.example") for _ in range(5)))
    await m365.set_password(jane["id"], PASSWORD)
    await m365.find_user("nobody@contoso.example")

    assert tokens(sim) == 1
    assert sim.tokens.issued == 1
    value = sim.find_requests("GET", USERS)[0].headers["Authorization"].split()[1]
    assert value not in repr(m365)


async def test_a_token_is_renewed_before_it_runs_out(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    sim.tokens.lifetime = 1.0  # expires_in 1: kept for half of it
    await m365.find_user("jane@contoso.example")
    await m365.find_user("jane@contoso.example")
    assert tokens(sim) == 1

    await asyncio.sleep(0.6)
    await m365.find_user("jane@contoso.example")

    assert tokens(sim) == 2
    assert 401 not in statuses(sim, "GET")


async def test_a_token_graph_no_longer_accepts_is_refreshed_once(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    sim.add_user("jane@contoso.example")
    await m365.find_user("jane@contoso.example")

    sim.tokens.expire_all()
    found = await m365.find_user("jane@contoso.example")

    assert found is not None
    assert tokens(sim) == 2
    assert statuses(sim, "GET") == [200, 401, 200]


@pytest.mark.parametrize(
    ("wrong", "status", "error", "code"),
    [
        ({"client_secret": "wrong-Secret~3"}, 401, "invalid_client", "AADSTS7000215"),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, 400, "unauthorized_client", ""),
        ({"tenant_id": "someone-else.example"}, 400, "invalid_request", "AADSTS90002"),
    ],
)
async def test_a_refused_token_is_an_auth_error_without_secrets(
    sim: GraphSim,
    origin: str,
    context: ConnectContext,
    caplog: pytest.LogCaptureFixture,
    wrong: dict[str, str],
    status: int,
    error: str,
    code: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    m365 = build(origin, context, credentials={**CREDENTIALS, **wrong})

    with pytest.raises(VendorAuthError) as caught:
        await m365.find_user("jane@contoso.example")

    assert caught.value.status == status
    assert caught.value.message.startswith(f"the token request was refused: {error}: AADSTS")
    assert code in caught.value.message
    assert tokens(sim) == 1
    assert sim.find_requests("GET", USERS) == []
    text = shown(caught.value, caplog.text, m365)
    assert SECRET not in text
    assert "wrong-Secret~3" not in text


async def test_a_tenant_domain_in_the_token_url(sim: GraphSim, origin: str) -> None:
    assert graph.token_url({"token_url": f"{origin}/login/{{tenant_id}}/t"}, "a b") == (
        f"{origin}/login/a%20b/t"
    )
    assert graph.token_url({}, "contoso.onmicrosoft.com") == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert graph.token_url({"token_url": None}, TENANT) == graph.DEFAULT_TOKEN_URL.format(
        tenant_id=TENANT
    )
    with pytest.raises(VendorRejected):
        graph.token_url({"token_url": 5}, TENANT)


async def test_the_default_token_url_is_entras(origin: str, context: ConnectContext) -> None:
    m365 = build(origin, context, token_url=None)
    assert isinstance(m365, graph.GraphConnector)
    token = m365.http.auth
    assert isinstance(token, graph.GraphToken)
    assert token._url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert SECRET not in repr(token)


async def test_missing_credentials_are_an_auth_error(origin: str, context: ConnectContext) -> None:
    with pytest.raises(VendorAuthError) as caught:
        build(origin, context, credentials={"tenant_id": TENANT, "client_id": CLIENT})
    assert "client_secret" in caught.value.message


async def test_a_token_endpoint_that_fails_for_a_while_is_retried(
    sim: GraphSim, m365: IdentityConnector
) -> None:
    sim.fail_next(1, 503, path_prefix="/login/")
    sim.fail_next(1, 429, retry_after=0, path_prefix="/login/")

    assert await m365.find_user("jane@contoso.example") is None

    assert [r.status for r in sim.find_requests("POST", "/login/")] == [503, 429, 200]


async def test_a_token_endpoint_down_past_the_policy_is_unavailable(
    sim: GraphSim, origin: str, context: ConnectContext
) -> None:
    quick = replace(context, policy=RetryPolicy(give_up_after=0.2, initial=0.01, maximum=0.02))
    sim.fail_next(1000, 503, path_prefix="/login/")
    m365 = build(origin, quick)

    with pytest.raises(VendorUnavailable):
        await m365.find_user("jane@contoso.example")
    assert sim.find_requests("GET", USERS) == []


async def test_no_error_shows_the_secret_or_a_password(
    sim: GraphSim, origin: str, context: ConnectContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sam = sim.add_user("sam@contoso.example", on_premises_sync_enabled=True)
    jane = sim.add_user("jane@contoso.example")
    m365 = build(origin, context)
    errors: list[VendorError] = []
    for user, password in ((sam, PASSWORD), (jane, "short1A")):
        with pytest.raises(VendorError) as caught:
            await m365.set_password(user["id"], password)
        errors.append(caught.value)
    sim.privileged = False
    with pytest.raises(VendorError) as denied:
        await m365.set_password(jane["id"], PASSWORD)
    errors.append(denied.value)
    bad = build(origin, context, credentials={**CREDENTIALS, "client_secret": "wrong-Secret~3"})
    with pytest.raises(VendorError) as refused:
        await bad.set_password(jane["id"], PASSWORD)
    errors.append(refused.value)

    text = " ".join(shown(e) for e in errors) + caplog.text + repr(m365) + repr(bad)
    for secret in (SECRET, "wrong-Secret~3", PASSWORD, "short1A"):
        assert secret not in text
