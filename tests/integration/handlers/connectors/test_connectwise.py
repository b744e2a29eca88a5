"""The ConnectWise connector against the ConnectWise simulator, over loopback HTTP."""

import base64
import logging
from typing import Any

import pytest

from schemas.enums import PsaProvider
from schemas.results import FailureReason, Outcome
from services.handlers.adapters.connectors import connectwise
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.domain.errors import MaybeDone, VendorAuthError, VendorRejected
from services.handlers.domain.markers import marker
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact
from services.handlers.service_layer.ports import PsaConnector
from services.handlers.service_layer.psa import link_contact
from tests.simulators import ConnectWiseSim

from .conftest import Serve, link_command

PREFIX = "/v4_6_release/apis/3.0"
CREDENTIALS = {
    "company_id": "Acme",
    "public_key": "pub-Kx81mQ",
    "private_key": "priv-Zr4T9w",
    "client_id": "3f1c9a52-7d4e-4b8a-9c61-0d2e5f7a8b90",
}
SECRETS = ("pub-Kx81mQ", "priv-Zr4T9w", base64.b64encode(b"Acme+pub-Kx81mQ:priv-Zr4T9w").decode())
FIELD = 7  # the simulator's "AccountKey" custom field
CONTOSO, FABRIKAM = 123, 456
CONTACTS = "/company/contacts"


@pytest.fixture
def sim() -> ConnectWiseSim:
    sim = ConnectWiseSim(
        company_id="acme",
        public_key=CREDENTIALS["public_key"],
        private_key=CREDENTIALS["private_key"],
        client_id=CREDENTIALS["client_id"],
        rate_limit=None,
    )
    sim.add_company(CONTOSO, "Contoso Ltd", "Contoso")
    sim.add_company(FABRIKAM, "Fabrikam Inc", "Fabrikam")
    return sim


@pytest.fixture
async def base_url(sim: ConnectWiseSim, serve: Serve) -> str:
    return await serve(sim, PREFIX)


def build(
    base_url: str,
    context: ConnectContext,
    *,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
    page_size: int = connectwise.PAGE_SIZE,
) -> PsaConnector:
    config = IntegrationConfig(
        partner_id="partner-1",
        provider="connectwise",
        base_url=base_url,
        settings={"marker_custom_field_id": FIELD} if settings is None else settings,
        credentials=CREDENTIALS if credentials is None else credentials,
    )
    return connectwise.connect(config, context, page_size=page_size)


@pytest.fixture
def psa(base_url: str, context: ConnectContext) -> PsaConnector:
    return build(base_url, context)


def new(email: str | None = "new.person@contoso.com", key: str = "key-1") -> NewContact:
    return NewContact("New", "Person", email, "+1 555 0100", marker(key, 250))


# -- search -----------------------------------------------------------------------


async def test_search_by_email_finds_the_company_contact_only(
    sim: ConnectWiseSim, psa: PsaConnector, base_url: str
) -> None:
    jane = sim.add_contact(
        "Jane", "Doe", company_id=CONTOSO, email="jane.doe@contoso.com", phone="555-0101"
    )
    sim.add_contact("Jane", "Doe", company_id=FABRIKAM, email="jane.doe@contoso.com")
    sim.add_contact("John", "Doe", company_id=CONTOSO, email="john.doe@contoso.com")

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(email="JANE.DOE@contoso.com"))

    assert [c.id for c in found] == [str(jane["id"])]
    contact = found[0]
    assert (contact.first_name, contact.last_name) == ("Jane", "Doe")
    assert contact.emails == ("jane.doe@contoso.com",)
    assert contact.phone == "555-0101"
    assert contact.marker is None
    origin = base_url.removesuffix(PREFIX)
    assert contact.url == (
        f"{origin}/v4_6_release/services/system_io/router/openrecord.rails"
        f"?recordType=ContactFV&recid={jane['id']}"
    )
    request = sim.find_requests("GET", CONTACTS)[0]
    assert request.query["conditions"] == f"company/id={CONTOSO}"
    assert request.query["childConditions"] == (
        'communicationItems/value="JANE.DOE@contoso.com"'
        ' AND communicationItems/communicationType="Email"'
    )
    assert request.query["pageSize"] == "1000"
    assert request.headers["clientId"] == CREDENTIALS["client_id"]


async def test_an_email_with_a_plus_and_a_second_address_is_found(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    body = {
        "firstName": "Ops",
        "company": {"id": CONTOSO},
        "communicationItems": [
            {"type": {"id": 1}, "value": "ops@contoso.com"},
            {"type": {"id": 4}, "value": "555-0199"},
            {"type": {"id": 1}, "value": "ops+it@contoso.com"},
            {"type": {"id": 3}, "value": "555-0123"},
        ],
    }
    created = sim.create_contact(body)

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(email="ops+it@contoso.com"))

    assert [c.id for c in found] == [str(created["id"])]
    assert found[0].emails == ("ops@contoso.com", "ops+it@contoso.com")
    assert found[0].phone == "555-0123"  # the fax is not a phone
    assert found[0].last_name == ""


async def test_search_by_name_asks_for_every_split_of_the_words(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    one = sim.add_contact("Mary Ann", "Smith", company_id=CONTOSO)
    two = sim.add_contact("Mary", "Ann Smith", company_id=CONTOSO)
    three = sim.add_contact("Mary Ann Smith", None, company_id=CONTOSO)
    sim.add_contact("Mary", "Smith", company_id=CONTOSO)
    sim.add_contact("Mary Ann", "Smith", company_id=FABRIKAM)

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(full_name="mary  ann smith"))

    assert sorted(c.id for c in found) == sorted(str(c["id"]) for c in (one, two, three))
    assert {c.full_name for c in found} == {"Mary Ann Smith"}


async def test_search_by_name_quotes_and_escapes(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    odd = sim.add_contact('Anna "Annie"', "O'Brien\\Jr", company_id=CONTOSO)

    found = await psa.search_contacts(
        str(CONTOSO), ContactQuery(full_name='Anna "Annie" O\'Brien\\Jr')
    )

    assert [c.id for c in found] == [str(odd["id"])]


async def test_a_one_word_name_is_looked_for_as_a_first_name(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    cher = sim.add_contact("Cher", None, company_id=CONTOSO)
    other = sim.add_contact("Cher", "Bono", company_id=CONTOSO)

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(full_name="Cher"))

    assert {c.id for c in found} == {str(cher["id"]), str(other["id"])}


async def test_inactive_contacts_are_not_candidates(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    gone = sim.add_contact("Old", "Timer", company_id=CONTOSO, email="old@contoso.com")
    sim.contacts[gone["id"]]["inactiveFlag"] = True

    assert await psa.search_contacts(str(CONTOSO), ContactQuery(email="old@contoso.com")) == []


async def test_search_follows_the_next_links_across_pages(
    sim: ConnectWiseSim, base_url: str, context: ConnectContext
) -> None:
    made = [
        sim.add_contact(f"Jo{i}", "Doe", company_id=CONTOSO, email="shared@contoso.com")
        for i in range(5)
    ]
    psa = build(base_url, context, page_size=2)

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(email="shared@contoso.com"))

    assert [c.id for c in found] == [str(c["id"]) for c in made]
    pages = [r.query.get("page") for r in sim.find_requests("GET", CONTACTS)]
    assert pages == ["1", "2", "3"]


async def test_a_company_id_that_is_not_a_number_is_refused_without_a_request(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    with pytest.raises(VendorRejected, match="number"):
        await psa.search_contacts("Contoso", ContactQuery(email="a@b.com"))
    assert list(sim.requests) == []


async def test_nothing_to_search_by_is_no_candidates(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    assert await psa.search_contacts(str(CONTOSO), ContactQuery(full_name="  ")) == []
    assert list(sim.requests) == []


# -- create -----------------------------------------------------------------------


async def test_create_then_search_finds_it_with_the_marker(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    assert psa.marker_limit == 250
    long_first = "Maximilian-Alexander Wolfgang-Johann"  # 36 characters
    request = NewContact(long_first, "Doe", "max@contoso.com", "+49 30 1234567", "the-key")

    created = await psa.create_contact(str(CONTOSO), request)

    assert created.first_name == long_first[:30]
    assert created.marker == "the-key"
    assert created.emails == ("max@contoso.com",)
    assert created.phone == "+49 30 1234567"
    stored = sim.contacts[int(created.id)]
    assert stored["company"]["id"] == CONTOSO
    assert [f.get("value") for f in stored["customFields"] if f["id"] == FIELD] == ["the-key"]
    post = sim.find_requests("POST", CONTACTS)[0]
    assert post.headers["Content-Type"] == "application/json"
    by_email = await psa.search_contacts(str(CONTOSO), ContactQuery(email="max@contoso.com"))
    assert [(c.id, c.marker) for c in by_email] == [(created.id, "the-key")]
    by_name = await psa.search_contacts(str(CONTOSO), ContactQuery(full_name=f"{long_first} Doe"))
    assert [c.id for c in by_name] == [created.id]  # found by the cut name


async def test_without_a_marker_field_nothing_is_marked(
    sim: ConnectWiseSim, base_url: str, context: ConnectContext
) -> None:
    psa = build(base_url, context, settings={})
    assert psa.marker_limit is None

    created = await psa.create_contact(str(CONTOSO), NewContact("Solo", "", None, None, "k"))

    assert created.marker is None
    assert created.last_name == ""
    body = sim.find_requests("POST", CONTACTS)[0].body
    assert "customFields" not in body
    assert "lastName" not in body
    assert body["communicationItems"] == []


async def test_a_429_storm_then_success_creates_exactly_one(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    sim.fail_next(3, 429, retry_after=0, method="POST")

    created = await psa.create_contact(str(CONTOSO), new())

    assert list(sim.contacts) == [int(created.id)]
    assert [r.status for r in sim.find_requests("POST", CONTACTS)] == [429, 429, 429, 201]


async def test_a_5xx_on_a_search_is_retried(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    sim.add_contact("Jane", "Doe", company_id=CONTOSO, email="jane@contoso.com")
    sim.fail_next(2, 503, method="GET")

    found = await psa.search_contacts(str(CONTOSO), ContactQuery(email="jane@contoso.com"))

    assert len(found) == 1
    assert [r.status for r in sim.find_requests("GET", CONTACTS)] == [503, 503, 200]


async def test_a_5xx_on_the_create_is_maybe_done_and_not_repeated(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 500, method="POST")

    with pytest.raises(MaybeDone):
        await psa.create_contact(str(CONTOSO), new())

    assert len(sim.find_requests("POST", CONTACTS)) == 1
    assert sim.contacts == {}


async def test_a_validation_error_is_rejected_with_the_vendor_message(psa: PsaConnector) -> None:
    with pytest.raises(VendorRejected) as caught:
        await psa.create_contact("999", new())
    assert caught.value.status == 400
    assert "Company id 999 is not valid." in caught.value.message
    assert "company/id" in caught.value.message


@pytest.mark.parametrize(
    "wrong",
    [{"private_key": "nope"}, {"client_id": "00000000-0000-0000-0000-000000000000"}],
)
async def test_bad_credentials_are_an_auth_error_without_secrets(
    base_url: str, context: ConnectContext, wrong: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    psa = build(base_url, context, credentials={**CREDENTIALS, **wrong})

    with pytest.raises(VendorAuthError) as caught:
        await psa.search_contacts(str(CONTOSO), ContactQuery(email="a@b.com"))

    assert caught.value.status == 401
    shown = " ".join((str(caught.value), repr(caught.value), repr(psa), caplog.text))
    for secret in (*SECRETS, "nope"):
        assert secret not in shown


def test_missing_credentials_are_an_auth_error(context: ConnectContext) -> None:
    incomplete = {**CREDENTIALS, "private_key": ""}
    with pytest.raises(VendorAuthError, match="private_key"):
        build(
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
            context,
            credentials=incomplete,
        )


@pytest.mark.parametrize(
    ("host", "path", "site"),
    [
        ("api-na.myconnectwise.net", "/v4_6_release/apis/3.0", "na.myconnectwise.net/v4_6_release"),
        ("api-eu.myconnectwise.net", "/v2025_1/apis/3.0/", "eu.myconnectwise.net/v2025_1"),
        ("cw.example.com", "/v4_6_release/apis/3.0", "cw.example.com/v4_6_release"),
    ],
)
def test_the_ui_is_the_site_of_the_api_host(host: str, path: str, site: str) -> None:
    assert connectwise.ui_base(f"https://{host}{path}") == f"https://{site}"


# -- the rule, end to end -----------------------------------------------------------


async def test_link_matches_by_email(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    jane = sim.add_contact("Jane", "Doe", company_id=CONTOSO, email="jane@contoso.com")
    command = link_command(PsaProvider.CONNECTWISE, str(CONTOSO), email="jane@contoso.com")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.MATCHED
    assert [r.id for r in result.refs] == [str(jane["id"])]
    assert result.contact is not None
    assert result.contact.email == "jane@contoso.com"
    assert sim.find_requests("POST") == []


async def test_link_matches_by_display_name(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    sam = sim.add_contact("Sam", "Lee", company_id=CONTOSO, phone="555-0111")
    command = link_command(PsaProvider.CONNECTWISE, str(CONTOSO), display_name="Sam Lee")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.MATCHED
    assert [r.id for r in result.refs] == [str(sam["id"])]
    assert result.contact is not None
    assert result.contact.phone == "555-0111"


async def test_link_creates_with_the_marker(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.CONNECTWISE, str(CONTOSO), email="new@contoso.com", display_name="New Hire"
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    (stored,) = sim.contacts.values()
    assert [r.id for r in result.refs] == [str(stored["id"])]
    assert (stored["firstName"], stored["lastName"]) == ("New", "Hire")
    values = [f.get("value") for f in stored["customFields"] if f["id"] == FIELD]
    assert values == [command.account.key]


async def test_link_not_found_creates_nothing(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    command = link_command(
        PsaProvider.CONNECTWISE, str(CONTOSO), email="nobody@contoso.com", create_if_missing=False
    )

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.NOT_FOUND
    assert sim.contacts == {}


async def test_link_is_ambiguous_with_two_matches(sim: ConnectWiseSim, psa: PsaConnector) -> None:
    for first in ("Jane", "J."):
        sim.add_contact(first, "Doe", company_id=CONTOSO, email="jd@contoso.com")
    command = link_command(PsaProvider.CONNECTWISE, str(CONTOSO), email="jd@contoso.com")

    result = await link_contact(command, psa)

    assert result.reason == FailureReason.AMBIGUOUS_MATCH
    assert len(result.refs) == 2
    assert sim.find_requests("POST") == []


async def test_link_after_a_crash_after_the_create_reports_created_once(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    command = link_command(PsaProvider.CONNECTWISE, str(CONTOSO), email="crash@contoso.com")
    mark = marker(command.account.key, psa.marker_limit)
    lost = NewContact("Jdoe", "", "crash@contoso.com", None, mark)
    made = await psa.create_contact(str(CONTOSO), lost)  # its result never recorded

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert "redo" in result.detail
    assert [r.id for r in result.refs] == [made.id]
    assert len(sim.contacts) == 1


async def test_link_after_a_lost_create_answer_searches_and_creates_once(
    sim: ConnectWiseSim, psa: PsaConnector
) -> None:
    sim.fail_next(1, 502, method="POST")
    command = link_command(PsaProvider.CONNECTWISE, str(CONTOSO), email="lost@contoso.com")

    result = await link_contact(command, psa)

    assert result.outcome == Outcome.CREATED
    assert len(sim.contacts) == 1
    assert [r.status for r in sim.find_requests("POST")] == [502, 201]
