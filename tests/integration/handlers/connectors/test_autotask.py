"""The Autotask connector against the Autotask simulator, over loopback HTTP."""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from schemas.enums import PsaProvider
from schemas.results import FailureReason, Outcome
from services.handlers.adapters.connectors import autotask
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.domain.errors import MaybeDone, VendorAuthError, VendorRejected
from services.handlers.domain.markers import marker
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact
from services.handlers.service_layer.ports import PsaConnector
from services.handlers.service_layer.psa import link_contact
from tests.simulators import AutotaskSim

from .conftest import Serve, account_key, link_command

PREFIX = "/atservicesrest"
CREDENTIALS = {
    "username": "api-user@fabrikam.example",
    "secret": "at-Secret-7Qp2",
    "integration_code": "TRACKINGCODE7Y3K",
}
SECRETS = ("at-Secret-7Qp2", "TRACKINGCODE7Y3K")
FABRIKAM, OTHER = 20417, 20999
QUERY = "/V1.0/Contacts/query"
CREATE = f"/V1.0/Companies/{FABRIKAM}/Contacts"


@pytest.fixture
def sim() -> AutotaskSim:
    sim = AutotaskSim(**CREDENTIALS, rate_limit=None)
    sim.add_company(FABRIKAM, "Fabrikam Inc")
    sim.add_company(OTHER, "Other Co")
    return sim


@pytest.fixture
async def base_url(sim: AutotaskSim, serve: Serve) -> str:
    return await serve(sim, PREFIX)


def build(
    base_url: str,
    context: ConnectContext,
    *,
    credentials: dict[str, str] | None = None,
    page_size: int = autotask.PAGE_SIZE,
) -> PsaConnector:
    config = IntegrationConfig(
        partner_id="partner-1",
        provider="autotask",
        base_url=base_url,
        settings={},
        credentials=CREDENTIALS if credentials is None else credentials,
    )
    return autotask.connect(config, context, page_size=page_size)


@pytest.fixture
def psa(base_url: str, context: ConnectContext) -> PsaConnector:
    return build(base_url, context)


def new(email: str | None = "new.person@fabrikam.example", key: str = "key-1") -> NewContact:
    return NewContact("New", "Person", email, "+1 555 0100", marker(key, 50))


def add(sim: AutotaskSim, company: int = FABRIKAM, **fields: Any) -> dict[str, Any]:
    return sim.add_contact(company, **{"firstName": "Jane", "lastName": "Doe", **fields})


# -- search -----------------------------------------------------------------------


async def test_search_by_email_finds_the_company_contact_only(
    sim: AutotaskSim, psa: PsaConnector, base_url: str
) -> None:
    jane = add(
        sim,
        emailAddress="jane@home.example",
        emailAddress2="jane.doe@fabrikam.example",
        mobilePhone="555-0102",
    )
    add(sim, OTHER, emailAddress="jane.doe@fabrikam.example")
    add(sim, firstName="John", emailAddress="john.doe@fabrikam.example")

    found = await psa.search_contacts(
        str(FABRIKAM), ContactQuery(email="Jane.Doe@fabrikam.example")
    )

    assert [c.id for c in found] == [str(jane["id"])]
    contact = found[0]
    assert contact.emails == ("jane@home.example", "jane.doe@fabrikam.example")
    assert contact.phone == "555-0102"
    assert contact.marker is None
    origin = base_url.removesuffix(PREFIX)
    assert contact.url == (
        f"{origin}/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenContact&ContactID={jane['id']}"
    )
    query = sim.find_requests("POST", QUERY)[0]
    assert query.body["filter"][0] == {"op": "eq", "field": "companyID", "value": FABRIKAM}
    assert query.body["MaxRecords"] == 500
    assert query.headers["Content-Type"] == "application/json"
    assert query.headers["ApiIntegrationCode"] == CREDENTIALS["integration_code"]


async def test_search_by_name_asks_for_every_split_of_the_words(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    one = add(sim, firstName="Mary Ann", lastName="Smith")
    two = add(sim, firstName="Mary", lastName="Ann Smith")
    three = add(sim, firstName="Mary Ann Smith", lastName="-")
    add(sim, firstName="Mary", lastName="Smith")
    add(sim, OTHER, firstName="Mary Ann", lastName="Smith")

    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(full_name="Mary Ann Smith"))

    assert sorted(c.id for c in found) == sorted(str(c["id"]) for c in (one, two, three))
    assert {c.full_name for c in found} == {"Mary Ann Smith"}  # a "-" last name is none


async def test_a_one_word_name_is_looked_for_as_a_first_name(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    cher = add(sim, firstName="Cher", lastName="-")
    other = add(sim, firstName="Cher", lastName="Bono")

    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(full_name="cher"))

    assert {c.id for c in found} == {str(cher["id"]), str(other["id"])}


async def test_inactive_contacts_are_not_candidates(sim: AutotaskSim, psa: PsaConnector) -> None:
    add(sim, emailAddress="old@fabrikam.example", isActive=0)

    assert (
        await psa.search_contacts(str(FABRIKAM), ContactQuery(email="old@fabrikam.example")) == []
    )


async def test_search_follows_next_page_urls(
    sim: AutotaskSim, base_url: str, context: ConnectContext
) -> None:
    made = [add(sim, firstName=f"Jo{i}", emailAddress="shared@fabrikam.example") for i in range(5)]
    psa = build(base_url, context, page_size=2)

    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(email="shared@fabrikam.example"))

    assert [c.id for c in found] == [str(c["id"]) for c in made]
    assert [(r.method, r.path) for r in sim.requests] == [
        ("POST", QUERY),
        ("GET", QUERY + "/next"),
        ("GET", QUERY + "/next"),
    ]


async def test_every_request_holds_one_of_the_slots(
    sim: AutotaskSim, base_url: str, context: ConnectContext
) -> None:
    class CountingSlots:
        held = 0

        @contextlib.asynccontextmanager
        async def hold(self) -> AsyncIterator[None]:
            self.held += 1
            yield

    slots = CountingSlots()
    psa = build(base_url, replace(context, slots=slots))
    await psa.create_contact(str(FABRIKAM), new())
    await psa.search_contacts(str(FABRIKAM), ContactQuery(email="x@fabrikam.example"))

    assert slots.held == len(sim.requests) == 3  # create, read back, query


# -- create -----------------------------------------------------------------------


async def test_create_then_search_finds_it_with_the_marker(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    assert psa.marker_limit == 50
    mark = marker(account_key("obj-1"), 50)
    assert len(mark) == 50  # the key is longer: its digest, cut

    created = await psa.create_contact(
        str(FABRIKAM), NewContact("Solo", "", "solo@fabrikam.example", "+1 555 0100", mark)
    )

    assert created.marker == mark
    assert (created.first_name, created.last_name) == ("Solo", "")
    assert created.phone == "+1 555 0100"
    stored = sim.contacts[int(created.id)]
    assert (stored["lastName"], stored["externalID"], stored["isActive"]) == ("-", mark, 1)
    assert [r.path for r in sim.requests] == [CREATE, f"/V1.0/Contacts/{created.id}"]
    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(email="solo@fabrikam.example"))
    assert [(c.id, c.marker) for c in found] == [(created.id, mark)]
    by_name = await psa.search_contacts(str(FABRIKAM), ContactQuery(full_name="Solo"))
    assert [c.id for c in by_name] == [created.id]


async def test_a_long_phone_is_left_out_and_long_names_cut(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    long_name = "A" * 60
    created = await psa.create_contact(
        str(FABRIKAM), NewContact(long_name, "Doe", None, "+1 (555) 0100 extension 12345", "k")
    )

    stored = sim.contacts[int(created.id)]
    assert stored["firstName"] == "A" * 50
    assert stored["phone"] is None
    assert created.phone is None


async def test_a_read_back_answering_no_item_builds_the_contact_from_the_create(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 200, body={"item": None}, method="GET", path_prefix="/V1.0/Contacts/")

    created = await psa.create_contact(str(FABRIKAM), new(key="k-2"))

    assert created.id == str(next(iter(sim.contacts)))
    assert created.marker == "k-2"
    assert created.emails == ("new.person@fabrikam.example",)


async def test_a_429_storm_then_success_creates_exactly_one(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    sim.fail_next(3, 429, retry_after=0, method="POST")

    created = await psa.create_contact(str(FABRIKAM), new())

    assert list(sim.contacts) == [int(created.id)]
    assert [r.status for r in sim.find_requests("POST", CREATE)] == [429, 429, 429, 200]


async def test_a_5xx_on_a_next_page_is_retried(
    sim: AutotaskSim, base_url: str, context: ConnectContext
) -> None:
    for i in range(3):
        add(sim, firstName=f"Jo{i}", emailAddress="shared@fabrikam.example")
    sim.fail_next(2, 503, method="GET", path_prefix=QUERY)
    psa = build(base_url, context, page_size=2)

    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(email="shared@fabrikam.example"))

    assert len(found) == 3
    assert [r.status for r in sim.find_requests("GET", QUERY)] == [503, 503, 200]


async def test_a_bare_500_on_the_query_is_retried(sim: AutotaskSim, psa: PsaConnector) -> None:
    add(sim, emailAddress="jane@fabrikam.example")
    sim.fail_next(1, 500, body="", path_prefix=QUERY)

    found = await psa.search_contacts(str(FABRIKAM), ContactQuery(email="jane@fabrikam.example"))

    assert len(found) == 1
    assert [r.status for r in sim.find_requests("POST", QUERY)] == [500, 200]


@pytest.mark.parametrize(("status", "body"), [(503, None), (500, ""), (500, {"message": "x"})])
async def test_a_5xx_on_the_create_is_maybe_done_and_not_repeated(
    sim: AutotaskSim, psa: PsaConnector, status: int, body: Any
) -> None:
    sim.fail_next(1, status, body=body, method="POST")

    with pytest.raises(MaybeDone):
        await psa.create_contact(str(FABRIKAM), new())

    assert len(sim.find_requests("POST", CREATE)) == 1
    assert sim.contacts == {}


async def test_a_validation_500_is_rejected_with_the_vendor_message(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    with pytest.raises(VendorRejected) as caught:
        await psa.create_contact(str(FABRIKAM), new(email="not-an-address"))

    assert caught.value.status == 500
    assert caught.value.message == "emailAddress is not a valid email address."
    assert len(sim.find_requests("POST", CREATE)) == 1


async def test_an_unknown_company_is_rejected(psa: PsaConnector) -> None:
    with pytest.raises(VendorRejected, match="Company 999 does not exist"):
        await psa.create_contact("999", new())


async def test_bad_credentials_are_an_auth_error_without_secrets(
    base_url: str, context: ConnectContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    psa = build(base_url, context, credentials={**CREDENTIALS, "secret": "wrong-Secret-1"})

    with pytest.raises(VendorAuthError) as caught:
        await psa.search_contacts(str(FABRIKAM), ContactQuery(email="a@b.example"))

    assert caught.value.status == 401
    shown = " ".join((str(caught.value), repr(caught.value), repr(psa), caplog.text))
    for secret in (*SECRETS, "wrong-Secret-1"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("api", "ui"),
    [
        ("https://webservices5.autotask.net/atservicesrest", "https://ww5.autotask.net"),
        ("https://WebServices14.autotask.net/atservicesrest/", "https://ww14.autotask.net"),
        ("https://at.example.com/atservicesrest", "https://at.example.com"),
    ],
)
def test_the_ui_is_the_web_host_of_the_zone(api: str, ui: str) -> None:
    assert autotask.ui_base(api) == ui


# -- the rule, end to end -----------------------------------------------------------


async def test_link_matches_by_email(sim: AutotaskSim, psa: PsaConnector) -> None:
    jane = add(sim, emailAddress="jane@fabrikam.example", phone="555-0101")
    command = link_command(PsaProvider.AUTOTASK, str(FABRIKAM), email="JANE@fabrikam.example")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.MATCHED
    assert [r.id for r in result.refs] == [str(jane["id"])]
    assert result.contact is not None
    assert (result.contact.email, result.contact.phone) == ("jane@fabrikam.example", "555-0101")


async def test_link_creates_with_the_marker(sim: AutotaskSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.AUTOTASK, str(FABRIKAM), email="hire@fabrikam.example", display_name="New Hire"
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    (stored,) = sim.contacts.values()
    assert [r.id for r in result.refs] == [str(stored["id"])]
    assert stored["externalID"] == marker(command.account.key, 50)


async def test_link_not_found_creates_nothing(sim: AutotaskSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.AUTOTASK, str(FABRIKAM), display_name="No Body", create_if_missing=False
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.NOT_FOUND
    assert sim.contacts == {}


async def test_link_is_ambiguous_with_two_matches(sim: AutotaskSim, psa: PsaConnector) -> None:
    add(sim, emailAddress="jd@fabrikam.example")
    add(sim, firstName="J.", emailAddress3="jd@fabrikam.example")
    command = link_command(PsaProvider.AUTOTASK, str(FABRIKAM), email="jd@fabrikam.example")

    result = await link_contact(command, psa)

    assert result.reason == FailureReason.AMBIGUOUS_MATCH
    assert len(result.refs) == 2
    assert sim.find_requests("POST", CREATE) == []


async def test_link_after_a_crash_after_the_create_reports_created_once(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    # No email, no display name: the rule searches by the name it would create.
    command = link_command(PsaProvider.AUTOTASK, str(FABRIKAM), username="solo")
    mark = marker(command.account.key, psa.marker_limit)
    made = await psa.create_contact(str(FABRIKAM), NewContact("solo", "", None, None, mark))

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert "redo" in result.detail
    assert [r.id for r in result.refs] == [made.id]
    assert len(sim.contacts) == 1


async def test_link_after_a_lost_create_answer_searches_and_creates_once(
    sim: AutotaskSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 504, method="POST", path_prefix=CREATE)
    command = link_command(PsaProvider.AUTOTASK, str(FABRIKAM), email="lost@fabrikam.example")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert len(sim.contacts) == 1
    assert [r.status for r in sim.find_requests("POST", CREATE)] == [504, 200]
