"""Inputs the contract refuses that the worker used to take (found by ``make chaos``,
scenario 7, which fuzzes ``account.discovered``).

An ``external_id`` with U+0000: the account key holds the external id and the ledger
stores the key in a PostgreSQL ``text`` column, which cannot hold NUL. Every attempt
of such an event's batch failed ("invalid byte sequence for encoding UTF8: 0x00"), so
one agent message stalled the worker for good. The contract now refuses NUL in
``external_id``: the event is dead-lettered at once like any other schema-invalid one,
and the batch goes on.

A number for ``time`` or ``discovered_at``: the JSON Schema says RFC 3339 text, but
pydantic read a number as Unix time and the worker acted on the event.
"""

import pytest

from services.import_worker.domain.inbound import Reason, Rejected, parse

from .fakes import FakeDirectory, FakePublisher
from .support import ALL_END_USER, END_USER, customer, discovered, headers, make_engine, record
from .support import policy as make_policy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("external_id", ["\x00", "S-1-5-21\x00", "\x00abc"])
async def test_a_nul_in_the_external_id_is_dead_lettered_and_the_batch_goes_on(
    external_id: str,
) -> None:
    bad = discovered("c1", external_id=external_id)
    good = discovered("c1", external_id="ext-ok")
    rejected = parse(record(bad).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_DATA
    assert "external_id" in rejected.detail

    publisher = FakePublisher()
    directory = FakeDirectory(customer("c1", end_user=make_policy(END_USER, **ALL_END_USER)))
    engine = make_engine(directory, publisher=publisher)
    await engine.process([record(bad, offset=0), record(good, offset=1)])

    (dead,) = publisher.on_topic("account.discovered.dlq")
    assert headers(dead)["x-error-reason"] == "invalid_data"
    assert headers(dead)["x-original-offset"] == "0"
    assert len(publisher.on_topic("import.decisions")) == 1


@pytest.mark.parametrize("value", [0, 5, -1, 1.5, 10**12])
def test_a_number_is_no_time(value: object) -> None:
    bad_time = discovered("c1", time=value)
    rejected = parse(record(bad_time).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_ENVELOPE

    bad_data = discovered("c1")
    bad_data["data"]["discovered_at"] = value
    rejected = parse(record(bad_data).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_DATA


def test_rfc3339_text_is_still_a_time() -> None:
    event = discovered("c1", time="2024-05-01T12:00:00+02:00")
    event["data"]["discovered_at"] = "2024-05-01T10:00:00Z"
    assert not isinstance(parse(record(event).value), Rejected)
