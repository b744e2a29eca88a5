"""The IT Glue connector over real HTTP against the IT Glue simulator.

Listing across pages, the link rule (matched, not found, ambiguous, deferred,
created), password sync back, the redo after a create, 429 storms, 5xx on a
read and on a create, a bad key (403), and validation errors that name the
attribute without ever showing the password.
"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from schemas.enums import DocumentationProvider
from schemas.results import FailureReason, Outcome
from services.handlers.adapters.connectors import itglue
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
from tests.simulators import ITGlueSim

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

KEY = "ITG.test0123456789abcdef"
ORG = "50101"
OTHER_ORG = "50233"
NESTED = f"/organizations/{ORG}/relationships/passwords"
JSONAPI = "application/vnd.api+json"
ITGLUE = DocumentationProvider.ITGLUE


@pytest.fixture
def sim() -> ITGlueSim:
    sim = ITGlueSim(api_key=KEY, rate_limit=None)
    sim.add_organization(int(ORG), "Contoso Ltd")
    sim.add_organization(int(OTHER_ORG), "Northwind Traders")
    return sim


@pytest.fixture
async def base_url(sim: ITGlueSim) -> AsyncIterator[str]:
    async with serving("itglue", sim) as url:
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
    page_size: int = itglue.PAGE_SIZE,
    **settings: Any,
) -> DocumentationConnector:
    config = integration("itglue", base_url, key, settings)
    return itglue.connect(config, connect_context(session), page_size=page_size)


@pytest.fixture
def docs(base_url: str, session: aiohttp.ClientSession) -> DocumentationConnector:
    return make(base_url, session)


def seed(sim: ITGlueSim, count: int, org: str = ORG, **attributes: Any) -> None:
    for i in range(count):
        sim.add_password(int(org), name=f"entry {i}", password=OLD_PASSWORD, **attributes)


def stored(sim: ITGlueSim, org: str = ORG) -> list[dict[str, Any]]:
    return [r for r in sim.passwords.values() if r["organization-id"] == int(org)]


# -- listing -------------------------------------------------------------------------


async def test_lists_every_page_of_the_largest_size(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    seed(sim, 1003)
    seed(sim, 2, OTHER_ORG)

    entries = await docs.password_entries(ORG, "jane.doe")

    assert len(entries) == 1003
    assert len({e.id for e in entries}) == 1003
    pages = sent(sim, "GET")
    assert [r.query["page[number]"] for r in pages] == ["1", "2"]
    assert {r.query["page[size]"] for r in pages} == {"1000"}
    assert all(r.path == NESTED for r in pages)  # never a password's own URL (its value)


async def test_small_pages_are_followed_to_the_end(
    sim: ITGlueSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    seed(sim, 7)
    docs = make(base_url, session, page_size=3)

    entries = await docs.password_entries(ORG, "")

    assert sorted(int(e.id) for e in entries) == sorted(sim.passwords)
    assert [r.query["page[number]"] for r in sent(sim, "GET")] == ["1", "2", "3"]


async def test_an_entry_is_mapped_with_its_notes_and_page_url(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    record = sim.add_password(
        int(ORG), name="Jane (AD)", username="jane.doe", password=OLD_PASSWORD, notes="a\nb"
    )

    [entry] = await docs.password_entries(ORG, "jane.doe")

    assert (entry.id, entry.name, entry.username, entry.marker_text) == (
        record["id"],
        "Jane (AD)",
        "jane.doe",
        "a\nb",
    )
    assert entry.url == record["attributes"]["resource-url"]
    [request] = sent(sim, "GET")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["Accept"] == JSONAPI


async def test_an_empty_organisation_has_no_entries(docs: DocumentationConnector) -> None:
    assert await docs.password_entries(ORG, "jane.doe") == []


# -- the link rule -------------------------------------------------------------------


async def test_matched_by_username_case_insensitively(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    seed(sim, 3)
    record = sim.add_password(int(ORG), name="Jane", username="Jane.Doe", password=OLD_PASSWORD)

    execution, link = await link_password(link_command(ITGLUE, ORG), docs, known(None))

    assert execution.outcome is Outcome.MATCHED
    assert link == DocLink(record["id"], record["attributes"]["resource-url"])
    assert [r.id for r in execution.refs] == [record["id"]]
    assert sent(sim, "POST") == []


async def test_matched_by_user_principal_name(sim: ITGlueSim, docs: DocumentationConnector) -> None:
    record = sim.add_password(
        int(ORG), name="Jane", username="JANE@contoso.example", password=OLD_PASSWORD
    )
    command = link_command(ITGLUE, ORG, who=account("jdoe", upn="jane@contoso.example"))

    execution, link = await link_password(command, docs, known(None))

    assert execution.outcome is Outcome.MATCHED
    assert link is not None
    assert link.entry_id == record["id"]


async def test_not_found_when_creating_is_not_allowed(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    seed(sim, 2, username="someone.else")

    execution, link = await link_password(
        link_command(ITGLUE, ORG, create_if_missing=False), docs, known(PASSWORD)
    )

    assert (execution.outcome, link) == (Outcome.NOT_FOUND, None)
    assert sent(sim, "POST") == []


async def test_ambiguous_when_two_entries_have_the_username(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    first = sim.add_password(int(ORG), name="a", username="jane.doe", password=OLD_PASSWORD)
    second = sim.add_password(int(ORG), name="b", username="JANE.DOE", password=OLD_PASSWORD)

    execution, link = await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert (execution.reason, link) == (FailureReason.AMBIGUOUS_MATCH, None)
    assert {r.id for r in execution.refs} == {first["id"], second["id"]}
    assert sent(sim, "POST") == []


async def test_deferred_without_a_password_then_created_by_the_first_one(
    sim: ITGlueSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    docs = make(base_url, session, password_category_id=16)
    command = link_command(ITGLUE, ORG)

    execution, link = await link_password(command, docs, known(None))
    assert (execution.outcome, link) == (Outcome.DEFERRED, DocLink(None))
    assert sent(sim, "POST") == []

    assert link is not None
    execution, link = await apply_password(command, link, docs, PASSWORD)

    assert execution.outcome is Outcome.CREATED
    [record] = stored(sim)
    assert link == DocLink(str(record["id"]), execution.refs[0].url)
    assert record["password"] == PASSWORD
    assert record["username"] == "jane.doe"
    assert record["name"] == "Jane Doe (AD)"
    assert record["notes"] == our_note(command)
    assert record["password-category-id"] == 16


async def test_created_at_once_when_the_password_is_known(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    command = link_command(ITGLUE, ORG)

    execution, link = await link_password(command, docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    [record] = stored(sim)
    assert record["password"] == PASSWORD
    assert link is not None
    assert link.entry_id == str(record["id"])
    assert link.url
    assert link.url.endswith(f"/passwords/{record['id']}")
    [post] = sent(sim, "POST")
    assert post.headers["Content-Type"] == JSONAPI
    assert post.path == NESTED
    assert post.body == {
        "data": {
            "type": "passwords",
            "attributes": {
                "name": "Jane Doe (AD)",
                "username": "jane.doe",
                "password": PASSWORD,
                "notes": our_note(command),
            },
        }
    }


async def test_the_demo_category_setting_is_read_from_a_string(
    sim: ITGlueSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    docs = make(base_url, session, password_category_id="15")

    await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    [record] = stored(sim)
    assert record["password-category-id"] == 15


async def test_a_linked_entry_gets_the_new_password(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    record = sim.add_password(int(ORG), name="Jane", username="jane.doe", password=OLD_PASSWORD)
    command = link_command(ITGLUE, ORG)
    _, link = await link_password(command, docs, known(None))
    assert link is not None

    execution, kept = await apply_password(command, link, docs, PASSWORD)

    assert (execution.outcome, kept) == (Outcome.UPDATED, link)
    stored_record = sim.passwords[int(record["id"])]
    assert stored_record["password"] == PASSWORD
    assert stored_record["password-updated-at"]
    [patch] = sent(sim, "PATCH")
    assert patch.path == f"{NESTED}/{record['id']}"
    assert patch.headers["Content-Type"] == JSONAPI
    assert patch.body["data"]["id"] == record["id"]
    assert set(patch.body["data"]["attributes"]) == {"password", "password-updated-at"}


# -- redo and faults -----------------------------------------------------------------


async def test_a_redo_after_a_create_finds_its_own_entry(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    command = link_command(ITGLUE, ORG)
    first, link = await link_password(command, docs, known(PASSWORD))

    again, link_again = await link_password(command, docs, known(PASSWORD))

    assert (first.outcome, again.outcome) == (Outcome.CREATED, Outcome.CREATED)
    assert "redo" in again.detail
    assert link_again == link
    assert len(stored(sim)) == 1
    assert len(sent(sim, "POST")) == 1


async def test_a_create_whose_answer_was_lost_is_found_by_our_note(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    command = link_command(ITGLUE, ORG)
    seed(sim, 4)
    landed = sim.add_password(
        int(ORG),
        name="Jane Doe (AD)",
        username="jane.doe",
        password=PASSWORD,
        notes=f"<p>{our_note(command)}</p>",  # as a rich-text editor may keep it
    )

    execution, link = await link_password(command, docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert link is not None
    assert link.entry_id == landed["id"]
    assert sent(sim, "POST") == []
    assert len(stored(sim)) == 5


async def test_a_429_storm_on_the_create_then_exactly_one_entry(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(3, 429, retry_after=0, method="POST")

    execution, _ = await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 1
    assert [r.status for r in sent(sim, "POST")] == [429, 429, 429, 201]


async def test_a_429_storm_on_the_listing_is_waited_out(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    seed(sim, 2)
    sim.fail_next(3, 429, retry_after=0)

    execution, _ = await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 3


async def test_a_5xx_on_a_read_is_retried(sim: ITGlueSim, docs: DocumentationConnector) -> None:
    seed(sim, 2)
    sim.fail_next(2, 503, method="GET")

    entries = await docs.password_entries(ORG, "jane.doe")

    assert len(entries) == 2
    assert [r.status for r in sent(sim, "GET")] == [503, 503, 200]


async def test_a_5xx_on_the_create_is_maybe_done(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 500, method="POST")
    new = NewPasswordEntry(name="n", username="u", password=PASSWORD, notes="x")

    with pytest.raises(MaybeDone) as raised:
        await docs.create_entry(ORG, new)

    assert len(sent(sim, "POST")) == 1  # not repeated blindly
    assert_no_secret((str(raised.value), repr(raised.value)), PASSWORD, KEY)


async def test_the_rule_searches_again_after_a_maybe_done(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 502, method="POST")

    execution, _ = await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert execution.outcome is Outcome.CREATED
    assert len(stored(sim)) == 1
    # the rule lists, lists again before its create, and again after the lost answer
    assert [r.method for r in sim.requests] == [
        "GET",
        "POST",
        "GET",
        "POST",
    ]  # listed once, then again after the lost answer


async def test_a_5xx_on_a_password_change_is_retried(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    record = sim.add_password(int(ORG), name="Jane", username="jane.doe", password=OLD_PASSWORD)
    sim.fail_next(1, 502, method="PATCH")

    await docs.set_password(ORG, record["id"], PASSWORD)

    assert sim.passwords[int(record["id"])]["password"] == PASSWORD
    assert [r.status for r in sent(sim, "PATCH")] == [502, 200]


# -- refusals --------------------------------------------------------------------------


async def test_a_bad_key_is_an_auth_error(
    sim: ITGlueSim, base_url: str, session: aiohttp.ClientSession
) -> None:
    wrong = "ITG.wrong0123456789"
    docs = make(base_url, session, key=wrong)

    with pytest.raises(VendorAuthError) as raised:
        await docs.password_entries(ORG, "jane.doe")

    assert raised.value.status == 403
    assert "API key" in raised.value.message
    assert_no_secret((str(raised.value), repr(raised.value)), wrong, KEY)


async def test_a_validation_error_names_the_attribute_not_the_password(
    sim: ITGlueSim, base_url: str, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    docs = make(base_url, session, password_category_id=999)

    with pytest.raises(VendorRejected) as raised:
        await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert raised.value.status == 422
    assert "/data/attributes/password_category_id" in raised.value.message
    assert "must exist" in raised.value.message
    assert_no_secret((str(raised.value), repr(raised.value)), PASSWORD, KEY)
    assert_clean_logs(caplog, PASSWORD, KEY)
    assert stored(sim) == []


async def test_a_vendor_message_that_quotes_the_password_is_scrubbed(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    error = {
        "status": "422",
        "title": "Unprocessable Entity",
        "detail": f"{PASSWORD} is too common",
        "source": {"pointer": "/data/attributes/password"},
    }
    sim.fail_next(1, 422, body={"errors": [error]}, method="POST")
    new = NewPasswordEntry(name="n", username="u", password=PASSWORD)

    with pytest.raises(VendorRejected) as raised:
        await docs.create_entry(ORG, new)

    assert (
        raised.value.message == "IT Glue 422: /data/attributes/password: [redacted] is too common"
    )
    assert_no_secret((str(raised.value), repr(raised.value), repr(new)), PASSWORD)


async def test_a_password_synced_from_a_psa_refuses_the_change(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    record = sim.add_password(
        int(ORG), psa_synced=True, name="Jane", username="jane.doe", password=OLD_PASSWORD
    )

    with pytest.raises(VendorRejected) as raised:
        await docs.set_password(ORG, record["id"], PASSWORD)

    assert raised.value.status == 422
    assert "synced from a PSA" in raised.value.message
    assert sim.passwords[int(record["id"])]["password"] == OLD_PASSWORD


async def test_an_unknown_organisation_is_rejected(docs: DocumentationConnector) -> None:
    with pytest.raises(VendorRejected) as raised:
        await docs.password_entries("999", "jane.doe")

    assert raised.value.status == 404
    assert "Organization" in raised.value.message


async def test_no_secret_in_logs_over_a_whole_flow(
    sim: ITGlueSim, docs: DocumentationConnector, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    command = link_command(ITGLUE, ORG)
    sim.fail_next(1, 429, retry_after=0)

    _, link = await link_password(command, docs, known(None))
    assert link is not None
    _, link = await apply_password(command, link, docs, OLD_PASSWORD)
    await apply_password(command, link, docs, PASSWORD)

    assert stored(sim)[0]["password"] == PASSWORD
    assert_clean_logs(caplog, PASSWORD, OLD_PASSWORD, KEY)
    assert_no_secret((repr(docs),), KEY)


async def test_a_list_answered_without_data_is_not_an_empty_organisation(
    sim: ITGlueSim, docs: DocumentationConnector
) -> None:
    sim.fail_next(1, 200, body={"meta": {}}, method="GET")

    with pytest.raises(VendorUnavailable, match="without a data list"):
        await link_password(link_command(ITGLUE, ORG), docs, known(PASSWORD))

    assert sent(sim, "POST") == []
