"""The Halo connector against the Halo simulator, over loopback HTTP (tokens included)."""

import asyncio
import logging
from dataclasses import replace
from typing import Any

import pytest

from schemas.enums import PsaProvider
from schemas.results import FailureReason, Outcome
from services.handlers.adapters.connectors import halo
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import RetryPolicy
from services.handlers.domain.errors import (
    MaybeDone,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.domain.markers import marker
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact
from services.handlers.service_layer.ports import PsaConnector
from services.handlers.service_layer.psa import link_contact
from tests.simulators import HaloSim

from .conftest import Serve, link_command

PREFIX = "/halo"
CREDENTIALS = {"client_id": "halo-client-1", "client_secret": "halo-Secret-9Xw3", "tenant": "acme"}
SECRET = "halo-Secret-9Xw3"
TAILSPIN, OTHER = 88, 99
USERS = "/api/Users"
TOKEN = "/auth/token"


@pytest.fixture
def sim() -> HaloSim:
    sim = HaloSim(
        client_id=CREDENTIALS["client_id"],
        client_secret=SECRET,
        tenant="acme",
        rate_limit=None,
    )
    sim.add_client(TAILSPIN, "Tailspin Toys", sites={881: "Main", 882: "Branch"})
    sim.add_client(OTHER, "Other")
    return sim


@pytest.fixture
async def base_url(sim: HaloSim, serve: Serve) -> str:
    return await serve(sim, PREFIX)


def build(
    base_url: str,
    context: ConnectContext,
    *,
    credentials: dict[str, str] | None = None,
    page_size: int = halo.PAGE_SIZE,
) -> PsaConnector:
    config = IntegrationConfig(
        partner_id="partner-1",
        provider="halo",
        base_url=base_url,
        settings={},
        credentials=CREDENTIALS if credentials is None else credentials,
    )
    return halo.connect(config, context, page_size=page_size)


@pytest.fixture
def psa(base_url: str, context: ConnectContext) -> PsaConnector:
    return build(base_url, context)


def new(email: str | None = "new.person@tailspin.example", key: str = "key-1") -> NewContact:
    return NewContact("New", "Person", email, "+1 555 0100", marker(key, 255))


def add(sim: HaloSim, client: int = TAILSPIN, **fields: Any) -> dict[str, Any]:
    return sim.add_user(**{"client_id": client, "firstname": "Jane", "surname": "Doe", **fields})


def tokens(sim: HaloSim) -> int:
    return len(sim.find_requests("POST", TOKEN))


def statuses(sim: HaloSim, method: str = "GET", path: str = USERS) -> list[int | None]:
    return [r.status for r in sim.find_requests(method, path)]


# -- search -----------------------------------------------------------------------


async def test_search_by_email_finds_the_client_user_only(
    sim: HaloSim, psa: PsaConnector, base_url: str
) -> None:
    jane = add(sim, emailaddress="jane.doe@tailspin.example", mobilenumber="555-0102", site_id=882)
    add(sim, OTHER, emailaddress="jane.doe@tailspin.example")
    add(sim, firstname="John", emailaddress="john.doe@tailspin.example")

    found = await psa.search_contacts(
        str(TAILSPIN), ContactQuery(email="jane.doe@tailspin.example")
    )

    assert [c.id for c in found] == [str(jane["id"])]
    contact = found[0]
    assert (contact.first_name, contact.last_name) == ("Jane", "Doe")
    assert contact.emails == ("jane.doe@tailspin.example",)
    assert contact.phone == "555-0102"
    assert contact.url == f"{base_url}/customers?clientid={TAILSPIN}&siteid=882&userid={jane['id']}"
    (request,) = sim.find_requests("GET", USERS)
    assert request.query == {
        "search": "jane.doe@tailspin.example",
        "client_id": str(TAILSPIN),
        "includeinactive": "false",
        "pageinate": "true",
        "page_size": "100",
        "page_no": "1",
    }
    assert request.headers["Authorization"].startswith("Bearer ")
    (token,) = sim.find_requests("POST", TOKEN)
    assert token.query == {"tenant": "acme"}
    assert token.body == {
        "grant_type": "client_credentials",
        "client_id": CREDENTIALS["client_id"],
        "client_secret": SECRET,
        "scope": "all",
    }


async def test_search_by_name(sim: HaloSim, psa: PsaConnector) -> None:
    sam = add(sim, firstname="Sam", surname="Lee")
    add(sim, firstname="Sam", surname="Leeds-Smith")
    add(sim, OTHER, firstname="Sam", surname="Lee")

    found = await psa.search_contacts(str(TAILSPIN), ContactQuery(full_name=" Sam   Lee "))

    assert str(sam["id"]) in {c.id for c in found}
    assert {c.full_name for c in found} <= {"Sam Lee", "Sam Leeds-Smith"}
    assert sim.find_requests("GET", USERS)[0].query["search"] == "Sam Lee"


async def test_a_user_with_only_a_name_has_it_as_first_name(
    sim: HaloSim, psa: PsaConnector
) -> None:
    sim.add_user(client_id=TAILSPIN, name="Reception Desk", emailaddress="desk@tailspin.example")

    (found,) = await psa.search_contacts(str(TAILSPIN), ContactQuery(full_name="Reception Desk"))

    assert found.full_name == "Reception Desk"


async def test_inactive_users_are_not_candidates(sim: HaloSim, psa: PsaConnector) -> None:
    add(sim, emailaddress="old@tailspin.example", inactive=True)

    assert (
        await psa.search_contacts(str(TAILSPIN), ContactQuery(email="old@tailspin.example")) == []
    )


@pytest.mark.parametrize(("count", "pages"), [(5, 3), (4, 3), (1, 1)])  # a full last page: +1
async def test_search_reads_every_page(
    sim: HaloSim, base_url: str, context: ConnectContext, count: int, pages: int
) -> None:
    made = [
        add(sim, firstname=f"Jo{i}", emailaddress="shared@tailspin.example") for i in range(count)
    ]
    psa = build(base_url, context, page_size=2)

    found = await psa.search_contacts(str(TAILSPIN), ContactQuery(email="shared@tailspin.example"))

    assert sorted(c.id for c in found) == sorted(str(u["id"]) for u in made)
    numbers = [r.query["page_no"] for r in sim.find_requests("GET", USERS)]
    assert numbers == [str(n) for n in range(1, pages + 1)]


# -- create -----------------------------------------------------------------------


async def test_create_then_search_finds_it_with_the_marker(sim: HaloSim, psa: PsaConnector) -> None:
    assert psa.marker_limit == 255

    created = await psa.create_contact(str(TAILSPIN), new(key="the-key"))

    assert created.marker == "the-key"
    assert created.emails == ("new.person@tailspin.example",)
    assert created.phone == "+1 555 0100"
    (post,) = sim.find_requests("POST", USERS)
    assert post.body == [
        {
            "firstname": "New",
            "surname": "Person",
            "name": "New Person",
            "client_id": TAILSPIN,
            "activedirectory_dn": "the-key",
            "emailaddress": "new.person@tailspin.example",
            "phonenumber": "+1 555 0100",
        }
    ]
    assert post.headers["Content-Type"] == "application/json"
    assert sim.users[int(created.id)]["site_id"] == 881
    found = await psa.search_contacts(str(TAILSPIN), ContactQuery(full_name="New Person"))
    assert [(c.id, c.marker) for c in found] == [(created.id, "the-key")]


def test_a_create_answered_with_a_list_takes_our_user() -> None:
    answer = [{"id": 1, "activedirectory_dn": "other"}, {"id": 2, "activedirectory_dn": "ours"}]
    assert halo._saved(answer, "ours") == answer[1]
    assert halo._saved(answer, "missing") == answer[0]
    assert halo._saved({"id": 3}, "ours") == {"id": 3}
    assert halo._saved([], "ours") is None


async def test_a_429_storm_then_success_creates_exactly_one(
    sim: HaloSim, psa: PsaConnector
) -> None:
    sim.fail_next(3, 429, retry_after=0, method="POST", path_prefix=USERS)

    created = await psa.create_contact(str(TAILSPIN), new())

    assert list(sim.users) == [int(created.id)]
    assert statuses(sim, "POST") == [429, 429, 429, 200]


async def test_a_5xx_on_a_search_is_retried(sim: HaloSim, psa: PsaConnector) -> None:
    add(sim, emailaddress="jane@tailspin.example")
    sim.fail_next(2, 502, method="GET", path_prefix=USERS)

    found = await psa.search_contacts(str(TAILSPIN), ContactQuery(email="jane@tailspin.example"))

    assert len(found) == 1
    assert statuses(sim) == [502, 502, 200]


async def test_a_5xx_on_the_create_is_maybe_done_and_not_repeated(
    sim: HaloSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 500, method="POST", path_prefix=USERS)

    with pytest.raises(MaybeDone):
        await psa.create_contact(str(TAILSPIN), new())

    assert len(sim.find_requests("POST", USERS)) == 1
    assert sim.users == {}


async def test_a_validation_error_is_rejected_with_the_vendor_message(psa: PsaConnector) -> None:
    with pytest.raises(VendorRejected) as caught:
        await psa.create_contact("999", new())
    assert caught.value.status == 400
    assert caught.value.message == "Client 999 does not exist."


@pytest.mark.parametrize("wrong", [{"client_secret": "wrong-Secret-2"}, {"tenant": "someone-else"}])
async def test_a_refused_token_is_an_auth_error_without_secrets(
    sim: HaloSim,
    base_url: str,
    context: ConnectContext,
    caplog: pytest.LogCaptureFixture,
    wrong: dict[str, str],
) -> None:
    caplog.set_level(logging.DEBUG)
    psa = build(base_url, context, credentials={**CREDENTIALS, **wrong})

    with pytest.raises(VendorAuthError) as caught:
        await psa.search_contacts(str(TAILSPIN), ContactQuery(email="a@b.example"))

    assert caught.value.status == 401
    assert "invalid_client" in caught.value.message
    assert tokens(sim) == 1
    assert sim.find_requests("GET", USERS) == []
    shown = " ".join((str(caught.value), repr(caught.value), repr(psa), caplog.text))
    assert SECRET not in shown
    assert "wrong-Secret-2" not in shown


# -- tokens -----------------------------------------------------------------------


async def test_one_token_serves_many_calls(sim: HaloSim, psa: PsaConnector) -> None:
    add(sim, emailaddress="jane@tailspin.example")
    query = ContactQuery(email="jane@tailspin.example")

    await asyncio.gather(*(psa.search_contacts(str(TAILSPIN), query) for _ in range(5)))
    await psa.create_contact(str(TAILSPIN), new())
    await psa.search_contacts(str(TAILSPIN), query)

    assert tokens(sim) == 1
    assert sim.tokens.issued == 1
    token_value = sim.find_requests("GET", USERS)[0].headers["Authorization"].split()[1]
    assert token_value not in repr(psa)


async def test_a_token_the_vendor_expired_is_refreshed_once(
    sim: HaloSim, psa: PsaConnector
) -> None:
    add(sim, emailaddress="jane@tailspin.example")
    query = ContactQuery(email="jane@tailspin.example")
    await psa.search_contacts(str(TAILSPIN), query)

    sim.tokens.expire_all()
    found = await psa.search_contacts(str(TAILSPIN), query)

    assert len(found) == 1
    assert tokens(sim) == 2
    assert statuses(sim) == [200, 401, 200]


async def test_a_token_is_renewed_before_it_runs_out(sim: HaloSim, psa: PsaConnector) -> None:
    sim.tokens.lifetime = 1.0  # expires_in 1: kept for half of it
    query = ContactQuery(email="jane@tailspin.example")
    await psa.search_contacts(str(TAILSPIN), query)
    await psa.search_contacts(str(TAILSPIN), query)
    assert tokens(sim) == 1

    await asyncio.sleep(0.6)
    await psa.search_contacts(str(TAILSPIN), query)

    assert tokens(sim) == 2
    assert 401 not in statuses(sim)


async def test_a_401_with_a_fresh_token_is_an_auth_error(sim: HaloSim, psa: PsaConnector) -> None:
    sim.fail_next(2, 401, path_prefix=USERS)

    with pytest.raises(VendorAuthError):
        await psa.search_contacts(str(TAILSPIN), ContactQuery(email="a@b.example"))

    assert tokens(sim) == 2
    assert statuses(sim) == [401, 401]


async def test_a_token_endpoint_that_fails_for_a_while_is_retried(
    sim: HaloSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 503, path_prefix=TOKEN)
    sim.fail_next(1, 429, retry_after=0, path_prefix=TOKEN)

    assert await psa.search_contacts(str(TAILSPIN), ContactQuery(email="a@b.example")) == []

    assert [r.status for r in sim.find_requests("POST", TOKEN)] == [503, 429, 200]


async def test_a_token_endpoint_down_past_the_policy_is_unavailable(
    sim: HaloSim, base_url: str, context: ConnectContext
) -> None:
    quick = replace(context, policy=RetryPolicy(give_up_after=0.2, initial=0.01, maximum=0.02))
    sim.fail_next(1000, 503, path_prefix=TOKEN)
    psa = build(base_url, quick)

    with pytest.raises(VendorUnavailable):
        await psa.search_contacts(str(TAILSPIN), ContactQuery(email="a@b.example"))
    assert sim.find_requests("GET", USERS) == []


# -- the rule, end to end -----------------------------------------------------------


async def test_link_matches_by_email(sim: HaloSim, psa: PsaConnector) -> None:
    jane = add(sim, emailaddress="jane@tailspin.example", phonenumber="555-0101")
    command = link_command(PsaProvider.HALO, str(TAILSPIN), email="Jane@Tailspin.example")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.MATCHED
    assert [r.id for r in result.refs] == [str(jane["id"])]
    assert result.contact is not None
    assert result.contact.phone == "555-0101"


async def test_link_creates_with_the_marker(sim: HaloSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.HALO, str(TAILSPIN), email="hire@tailspin.example", display_name="New Hire"
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    (stored,) = sim.users.values()
    assert [r.id for r in result.refs] == [str(stored["id"])]
    assert stored["activedirectory_dn"] == command.account.key  # short enough to be kept whole


async def test_link_not_found_creates_nothing(sim: HaloSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.HALO, str(TAILSPIN), email="nobody@tailspin.example", create_if_missing=False
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.NOT_FOUND
    assert sim.users == {}


async def test_link_is_ambiguous_with_two_matches(sim: HaloSim, psa: PsaConnector) -> None:
    add(sim, emailaddress="jd@tailspin.example")
    add(sim, firstname="J.", emailaddress="jd@tailspin.example")
    command = link_command(PsaProvider.HALO, str(TAILSPIN), email="jd@tailspin.example")

    result = await link_contact(command, psa)

    assert result.reason == FailureReason.AMBIGUOUS_MATCH
    assert len(result.refs) == 2
    assert sim.find_requests("POST", USERS) == []


async def test_link_after_a_crash_after_the_create_reports_created_once(
    sim: HaloSim, psa: PsaConnector
) -> None:
    command = link_command(PsaProvider.HALO, str(TAILSPIN), display_name="Crash Test")
    mark = marker(command.account.key, psa.marker_limit)
    made = await psa.create_contact(str(TAILSPIN), NewContact("Crash", "Test", None, None, mark))

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert "redo" in result.detail
    assert [r.id for r in result.refs] == [made.id]
    assert len(sim.users) == 1


async def test_link_after_a_lost_create_answer_searches_and_creates_once(
    sim: HaloSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 503, method="POST", path_prefix=USERS)
    command = link_command(PsaProvider.HALO, str(TAILSPIN), email="lost@tailspin.example")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert len(sim.users) == 1
    assert statuses(sim, "POST") == [503, 200]
