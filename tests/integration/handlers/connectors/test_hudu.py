"""The Hudu connector over real HTTP against the Hudu simulator.

Listing until a short page, the link rule (matched, not found, ambiguous,
deferred, created), password sync back, the redo after a create, 429 storms,
5xx on a read and on a create, a bad key (401), Hudu's error shapes (422
string, 400 ``error``/``details``) and its ``200 null``, never with a password.
"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from schemas.enums import DocumentationProvider
from schemas.results import FailureReason, Outcome
from services.handlers.adapters.connectors import hudu
from services.handlers.domain.errors import (
    MaybeDone,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.domain.records import NewPasswordEntry
from services.handlers.service_layer.documentation import (
    DocLink,
    apply_password,
    known,
    link_password,
)
from services.handlers.service_layer.ports import DocumentationConnector
from tests.simulators import HuduSim

from .doc_fixtures import (
    OLD_PASSWORD,
    PASSWORD,
    account,
    assert_clean_logs,
    assert_no_secret,
    capture_everything,
    client_session,
    connect_context,
    integration,
    link_command,
    our_note,
    sent,
    serving,
)

KEY = "hudu-test-key-0123456789"
ORG = "77"
OTHER_ORG = "91"
PASSWORDS = "/api/v1/asset_passwords"
HUDU = DocumentationProvider.HUDU


@pytest.fixture
def sim() -> HuduSim:
    sim = HuduSim(api_key=KEY, rate_limit=None)
    sim.add_company(int(ORG), "Fabrikam Inc")
    sim.add_company(int(OTHER_ORG), "Tailspin Toys")
    return sim


@pytest.fixture
async def base_url(sim: HuduSim) -> AsyncIterator[str]:
    async with serving("hudu", sim) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session() as session:
        yield session


def make(
    base_url: str,
    session: aiohttp.ClientSession,
    *,
    key: str = KEY,
    page_size: int = hudu.PAGE_SIZE,
) -> DocumentationConnector:
    config = integration("hudu", base_url, key)
    return hudu.connect(config, connect_context(session), page_size=page_size)


@pytest.fixture
def docs(base_url: str, session: aiohttp.ClientSession) -> DocumentationConnector:
    return make(base_url, session)


def seed(sim: HuduSim, count: int, org: str = ORG, **fields: Any) -> None:
    for i in range(count):
        sim.add_password(company_id=int(org), name=f"entry {i}", password=OLD_PASSWORD, **fields)


def add(sim: HuduSim, username: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("password", OLD_PASSWORD)
    return sim.add_password(
        company_id=int(ORG), name=f"{username} (AD)", username=username, **fields
    )


def stored(sim: HuduSim, org: str = ORG) -> list[dict[str, Any]]:
    return [r for r in sim.passwords.values() if r["company_id"] == int(org)]


# -- listing -------------------------------------------------------------------------


async def test_lists_until_a_short_page(sim: HuduSim, docs: DocumentationConnector) -> None:
    seed(sim, 250)
    seed(sim, 3, OTHER_ORG)

    entries = await docs.password_entries(ORG, "jane.doe")

    assert len(entries) == 250
    assert {int(e.id) for e in entries} == {r["id"] for r in stored(sim)}
    pages = sent(sim, "GET")
    assert [r.query["page"] for r in pages] == ["1", "2", "3"]
    assert {(r.path, r.query["company_id"], r.query["page_size"]) for r in pages} == {
        (PASSWORDS, ORG, "100")
    }


async def test_a_full_last_page_costs_one_empty_page(
    sim: HuduSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    seed(sim, 6)
    docs = make(base_url, session, page_size=3)

    entries = await docs.password_entries(ORG, "")

    assert len(entries) == 6
    assert [r.query["page"] for r in sent(sim, "GET")] == ["1", "2", "3"]


async def test_an_entry_is_mapped_with_its_description(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    record = add(sim, "jane.doe", description="first line\nsecond", url="https://portal.example")

    [entry] = await docs.password_entries(ORG, "jane.doe")

    assert (entry.id, entry.name, entry.username, entry.marker_text) == (
        str(record["id"]),
        "jane.doe (AD)",
        "jane.doe",
        "first line\nsecond",
    )
    assert entry.url is None  # the record's url is the site the password is for
    [request] = sent(sim, "GET")
    assert request.headers["x-api-key"] == KEY


async def test_a_base_url_that_already_ends_in_the_api_path(
    sim: HuduSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    add(sim, "jane.doe")
    docs = make(base_url + "/api/v1/", session)

    assert len(await docs.password_entries(ORG, "jane.doe")) == 1
    assert sent(sim, "GET")[0].path == PASSWORDS


# -- the link rule -------------------------------------------------------------------


async def test_matched_by_username_case_insensitively(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    seed(sim, 3)
    record = add(sim, "Jane.Doe")

    execution, link = await link_password(link_command(HUDU, ORG), docs, known(None))

    assert execution.outcome is Outcome.MATCHED
    assert link == DocLink(str(record["id"]), None)
    assert sent(sim, "POST") == []


async def test_matched_by_user_principal_name(sim: HuduSim, docs: DocumentationConnector) -> None:
    record = add(sim, "jane@fabrikam.example")
    command = link_command(HUDU, ORG, who=account("jdoe", upn="Jane@Fabrikam.example"))

    execution, link = await link_password(command, docs, known(None))

    assert execution.outcome is Outcome.MATCHED
    assert link is not None
    assert link.entry_id == str(record["id"])


async def test_not_found_when_creating_is_not_allowed(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    add(sim, "someone.else")

    execution, link = await link_password(
        link_command(HUDU, ORG, create_if_missing=False), docs, known(PASSWORD)
    )

    assert (execution.outcome, link) == (Outcome.NOT_FOUND, None)
    assert sent(sim, "POST") == []


async def test_ambiguous_when_two_entries_have_the_username(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    first, second = add(sim, "jane.doe"), add(sim, "JANE.DOE")

    execution, link = await link_password(link_command(HUDU, ORG), docs, known(PASSWORD))

    assert (execution.reason, link) == (FailureReason.AMBIGUOUS_MATCH, None)
    assert {r.id for r in execution.refs} == {str(first["id"]), str(second["id"])}
    assert sent(sim, "POST") == []


async def test_deferred_without_a_password_then_created_by_the_first_one(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    command = link_command(HUDU, ORG)

    execution, link = await link_password(command, docs, known(None))
    assert (execution.outcome, link) == (Outcome.DEFERRED, DocLink(None))
    assert link is not None

    execution, link = await apply_password(command, link, docs, PASSWORD)

    assert execution.outcome is Outcome.CREATED
    [record] = stored(sim)
    assert link == DocLink(str(record["id"]), None)
    assert (record["password"], record["username"], record["name"]) == (
        PASSWORD,
        "jane.doe",
        "Jane Doe (AD)",
    )
    assert record["description"] == our_note(command)


async def test_created_at_once_when_the_password_is_known(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    command = link_command(HUDU, ORG)

    execution, link = await link_password(command, docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    [record] = stored(sim)
    assert record["password"] == PASSWORD
    assert link is not None
    assert link.entry_id == str(record["id"])
    [post] = sent(sim, "POST")
    assert post.headers["Content-Type"] == "application/json"
    assert post.body == {
        "asset_password": {
            "company_id": 77,
            "name": "Jane Doe (AD)",
            "username": "jane.doe",
            "password": PASSWORD,
            "description": our_note(command),
        }
    }


async def test_a_linked_entry_gets_the_new_password(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    record = add(sim, "jane.doe")
    command = link_command(HUDU, ORG)
    _, link = await link_password(command, docs, known(None))
    assert link is not None

    execution, kept = await apply_password(command, link, docs, PASSWORD)

    assert (execution.outcome, kept) == (Outcome.UPDATED, link)
    assert sim.passwords[record["id"]]["password"] == PASSWORD
    [put] = sent(sim, "PUT")
    assert put.path == f"{PASSWORDS}/{record['id']}"
    assert put.body == {"asset_password": {"password": PASSWORD}}


# -- redo and faults -----------------------------------------------------------------


async def test_a_redo_after_a_create_finds_its_own_entry(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    command = link_command(HUDU, ORG)
    first, link = await link_password(command, docs, known(PASSWORD))

    again, link_again = await link_password(command, docs, known(PASSWORD))

    assert (first.outcome, again.outcome) == (Outcome.CREATED, Outcome.CREATED)
    assert "redo" in again.detail
    assert link_again == link
    assert len(stored(sim)) == 1
    assert len(sent(sim, "POST")) == 1


async def test_a_create_whose_answer_was_lost_is_found_by_our_note(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    command = link_command(HUDU, ORG)
    seed(sim, 4)
    landed = add(sim, "jane.doe", password=PASSWORD, description=f"<div>{our_note(command)}</div>")

    execution, link = await link_password(command, docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert link is not None
    assert link.entry_id == str(landed["id"])
    assert sent(sim, "POST") == []


async def test_a_429_storm_on_the_create_then_exactly_one_entry(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(3, 429, body="Retry later\n", retry_after=0, method="POST")

    execution, _ = await link_password(link_command(HUDU, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 1
    assert [r.status for r in sent(sim, "POST")] == [429, 429, 429, 201]


async def test_a_429_storm_on_the_listing_is_waited_out(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    seed(sim, 2)
    sim.fail_next(3, 429, retry_after=0)

    execution, _ = await link_password(link_command(HUDU, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 3


async def test_a_5xx_on_a_read_is_retried(sim: HuduSim, docs: DocumentationConnector) -> None:
    seed(sim, 2)
    sim.fail_next(2, 503, method="GET")

    assert len(await docs.password_entries(ORG, "jane.doe")) == 2
    assert [r.status for r in sent(sim, "GET")] == [503, 503, 200]


async def test_a_5xx_on_the_create_is_maybe_done(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 500, method="POST")
    new = NewPasswordEntry(name="n", username="u", password=PASSWORD, notes="x")

    with pytest.raises(MaybeDone) as raised:
        await docs.create_entry(ORG, new)

    assert len(sent(sim, "POST")) == 1
    assert stored(sim) == []
    assert_no_secret((str(raised.value), repr(raised.value)), PASSWORD, KEY)


async def test_the_rule_searches_again_after_a_maybe_done(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 504, method="POST")

    execution, _ = await link_password(link_command(HUDU, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 1
    assert [r.method for r in sim.requests] == [
        "GET",
        "POST",
        "GET",
        "POST",
    ]  # listed once, then again after the lost answer


async def test_a_5xx_on_a_password_change_is_retried(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    record = add(sim, "jane.doe")
    sim.fail_next(1, 502, method="PUT")

    await docs.set_password(ORG, str(record["id"]), PASSWORD)

    assert sim.passwords[record["id"]]["password"] == PASSWORD


# -- refusals --------------------------------------------------------------------------


async def test_a_bad_key_is_an_auth_error(
    sim: HuduSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    wrong = "hudu-wrong-key-987"
    docs = make(base_url, session, key=wrong)

    with pytest.raises(VendorAuthError) as raised:
        await docs.password_entries(ORG, "jane.doe")

    assert raised.value.status == 401
    assert raised.value.message == "Hudu 401: Invalid API key"
    assert_no_secret((str(raised.value), repr(raised.value)), wrong, KEY)


async def test_a_validation_error_carries_hudus_words_not_the_password(
    sim: HuduSim, docs: DocumentationConnector, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)

    with pytest.raises(VendorRejected) as raised:
        await link_password(link_command(HUDU, "999"), docs, known(PASSWORD))

    assert raised.value.status == 422
    assert raised.value.message == "Hudu 422: Company must exist"
    assert_no_secret((str(raised.value), repr(raised.value)), PASSWORD, KEY)
    assert_clean_logs(caplog, PASSWORD, KEY)


async def test_a_missing_parameter_is_rejected_with_the_details(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    body = {
        "error": "Parameter missing",
        "details": "param is missing or the value is empty: asset_password",
    }
    sim.fail_next(1, 400, body=body, method="POST")

    with pytest.raises(VendorRejected) as raised:
        await docs.create_entry(ORG, NewPasswordEntry(name="n", username="u", password=PASSWORD))

    assert raised.value.status == 400
    assert raised.value.message == (
        "Hudu 400: Parameter missing: param is missing or the value is empty: asset_password"
    )


async def test_a_field_map_of_errors_is_read_and_the_password_scrubbed(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    body = {"errors": {"password": [f"{PASSWORD} was found in a breach"], "name": ["is short"]}}
    sim.fail_next(1, 422, body=body, method="PUT")
    record = add(sim, "jane.doe")

    with pytest.raises(VendorRejected) as raised:
        await docs.set_password(ORG, str(record["id"]), PASSWORD)

    assert raised.value.message == (
        "Hudu 422: password [redacted] was found in a breach; name is short"
    )
    assert_no_secret((str(raised.value), repr(raised.value)), PASSWORD)


async def test_a_200_null_to_a_change_is_not_found(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 200, body="null", method="PUT")

    with pytest.raises(VendorRejected) as raised:
        await docs.set_password(ORG, "4242", PASSWORD)

    assert (raised.value.status, raised.value.message) == (404, "Hudu has no asset password 4242")


async def test_a_change_of_a_missing_password_is_rejected(docs: DocumentationConnector) -> None:
    with pytest.raises(VendorRejected) as raised:
        await docs.set_password(ORG, "4242", PASSWORD)

    assert raised.value.status == 404
    assert_no_secret((raised.value.message,), PASSWORD)


async def test_a_create_answered_without_a_record_is_maybe_done(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 201, body="null", method="POST")

    with pytest.raises(MaybeDone):
        await docs.create_entry(ORG, NewPasswordEntry(name="n", username="u", password=PASSWORD))


async def test_a_list_answered_with_null_is_not_an_empty_company(
    sim: HuduSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 200, body="null", method="GET")

    with pytest.raises(VendorUnavailable, match="without asset_passwords"):
        await link_password(link_command(HUDU, ORG), docs, known(PASSWORD))

    assert sent(sim, "POST") == []


async def test_no_secret_in_logs_over_a_whole_flow(
    sim: HuduSim, docs: DocumentationConnector, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    command = link_command(HUDU, ORG)
    sim.fail_next(1, 429, body="Retry later\n", retry_after=0)

    _, link = await link_password(command, docs, known(None))
    assert link is not None
    _, link = await apply_password(command, link, docs, OLD_PASSWORD)
    await apply_password(command, link, docs, PASSWORD)

    assert stored(sim)[0]["password"] == PASSWORD
    assert_clean_logs(caplog, PASSWORD, OLD_PASSWORD, KEY)
    assert_no_secret((repr(docs),), KEY)
