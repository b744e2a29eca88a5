"""The order of effects of ``BatchEngine.process`` under failures (engine.py's docstring).

A failure anywhere before the ledger commit rolls the ledger back and
propagates; the redone batch re-sends the same command ids with the same data;
the ledger never holds an account whose commands were not acknowledged.
"""

import re
from collections.abc import Callable
from typing import Any

import pytest

from schemas.ids import command_id
from services.import_worker.service_layer.ports import LedgerRow, OutMessage

from .fakes import FakeDirectory, FakeLedger, FakePublisher, InjectedFailure
from .support import (
    ADMIN,
    ALL_ADMIN,
    ALL_END_USER,
    COMMAND_TOPICS,
    END_USER,
    PARTNER,
    TOPIC_OF,
    body,
    customer,
    customer_id,
    discovered,
    key_of,
    ledger_backed,
    make_engine,
    policy,
    record,
)

pytestmark = pytest.mark.unit

EVENTS = [
    discovered("c1", external_id="u1", event_id="e1"),
    discovered("c1", external_id="u2", event_id="e2", correlationid="scan-1"),
    discovered("c1", external_id="a1", account_type=ADMIN, event_id="e3"),
    discovered("c2", external_id="u3", event_id="e4"),  # no policy
    discovered("c9", external_id="u4", event_id="e5"),  # unknown customer
    discovered("c1", external_id="old", event_id="e6"),  # already imported
]
IMPORTED = {key_of(e) for e in EVENTS[:3]}
OLD_ROW = LedgerRow(
    account_key=key_of(EVENTS[5]),
    partner_id=PARTNER,
    customer_id=customer_id("c1"),
    policy_id=policy(END_USER, **ALL_END_USER).id,
    policy_version=3,
    decision_id=command_id("old", "decision"),
)
OLD = frozenset({OLD_ROW.account_key})
# Commands per imported end-user (5) and administrator (2), one decision each,
# a no_policy decision, a retry, a dead letter.
TOTAL = 5 + 1 + 5 + 1 + 2 + 1 + 1 + 1 + 1


def _batch() -> list[Any]:
    records = [record(e, offset=i) for i, e in enumerate(EVENTS)]
    return [*records, record(b"not json", offset=len(records))]


def _world() -> tuple[FakeDirectory, FakeLedger, FakePublisher]:
    directory = FakeDirectory(
        customer("c1", end_user=policy(END_USER, **ALL_END_USER), admin=policy(ADMIN, **ALL_ADMIN)),
        customer("c2"),
    )
    return directory, FakeLedger(OLD_ROW), FakePublisher()


Arm = Callable[[FakeDirectory, FakeLedger, FakePublisher], None]
BEFORE_COMMIT: dict[str, Arm] = {
    "directory_lookup": lambda d, _l, _p: d.fault.arm(),
    "ledger_claim": lambda _d, ledger, _p: ledger.claim_fault.arm(),
    "first_message": lambda _d, _l, p: p.fail_at_message(1),
    "third_message": lambda _d, _l, p: p.fail_at_message(3),
    "last_message": lambda _d, _l, p: p.fail_at_message(TOTAL),
    "notification_topic": lambda _d, _l, p: p.fail_on_topic("commands.notification"),
    "decision_topic": lambda _d, _l, p: p.fail_on_topic("import.decisions"),
    "retry_topic": lambda _d, _l, p: p.fail_on_topic("import-worker.account.discovered.retry"),
    "broker_acks_lost": lambda _d, _l, p: p.ack_fault.arm(),
    "ledger_commit": lambda _d, ledger, _p: ledger.commit_fault.arm(),
}


def _comparable(message: OutMessage) -> tuple[Any, ...]:
    """A command or decision as a handler compares duplicates: every byte but ``time``."""
    assert message.value is not None
    value = re.sub(rb'"time":"[^"]*"', b'"time":"-"', message.value, count=1)
    return message.topic, message.key, tuple(message.headers), value


def _assert_same_ids_same_content(sent: list[OutMessage]) -> None:
    seen: dict[tuple[str, str], tuple[Any, ...]] = {}
    for message in sent:
        if message.topic not in TOPIC_OF.values():
            continue
        envelope = body(message)
        if message.topic in COMMAND_TOPICS:
            assert envelope["id"] == str(command_id(envelope["subject"], envelope["type"]))
        first = seen.setdefault((message.topic, envelope["id"]), _comparable(message))
        assert _comparable(message) == first, "a duplicate id with other content"


async def _clean_run() -> list[OutMessage]:
    directory, ledger, publisher = _world()
    await make_engine(directory, ledger, publisher).process(_batch())
    return publisher.sent


async def test_the_batch_has_the_expected_size() -> None:
    assert len(await _clean_run()) == TOTAL


@pytest.mark.parametrize("arm", BEFORE_COMMIT.values(), ids=BEFORE_COMMIT.keys())
async def test_a_failure_before_the_commit_rolls_back_and_the_redo_resends_the_same(
    arm: Arm,
) -> None:
    directory, ledger, publisher = _world()
    ledger.before_commit = lambda rows: ledger_backed(publisher, rows)
    engine = make_engine(directory, ledger, publisher)
    arm(directory, ledger, publisher)

    with pytest.raises(InjectedFailure):
        await engine.process(_batch())

    assert ledger.rows == {OLD_ROW.account_key: OLD_ROW}, "a key became visible"
    assert ledger.open == 0
    assert ledger.commits == 0
    ledger_backed(publisher, ledger.rows, OLD)
    partial = list(publisher.sent)

    await engine.process(_batch())

    assert set(ledger.rows) == {*IMPORTED, OLD_ROW.account_key}
    assert ledger.commits == 1
    ledger_backed(publisher, ledger.rows, OLD)
    _assert_same_ids_same_content(publisher.sent)
    redo = publisher.sent[len(partial) :]
    clean = await _clean_run()
    ids = [body(m)["id"] for m in redo if m.topic in TOPIC_OF.values()]
    assert ids == [body(m)["id"] for m in clean if m.topic in TOPIC_OF.values()]
    assert {_comparable(m) for m in redo if m.topic in TOPIC_OF.values()} == {
        _comparable(m) for m in clean if m.topic in TOPIC_OF.values()
    }
    assert {body(m)["id"] for m in partial if m.topic in TOPIC_OF.values()} <= set(ids)


async def test_a_lost_commit_acknowledgement_is_redone_as_a_rediscovery() -> None:
    """The commit was durable: commands were acknowledged before it, none is re-sent."""
    directory, ledger, publisher = _world()
    ledger.before_commit = lambda rows: ledger_backed(publisher, rows)
    engine = make_engine(directory, ledger, publisher)
    ledger.commit_ack_fault.arm()
    with pytest.raises(InjectedFailure):
        await engine.process(_batch())
    assert set(ledger.rows) == {*IMPORTED, OLD_ROW.account_key}
    ledger_backed(publisher, ledger.rows, OLD)
    before = len([m for m in publisher.sent if m.topic in COMMAND_TOPICS])

    result = await engine.process(_batch())

    assert len([m for m in publisher.sent if m.topic in COMMAND_TOPICS]) == before
    assert result.rediscovered == len(IMPORTED) + 1
    _assert_same_ids_same_content(publisher.sent)


async def test_commands_are_acknowledged_before_the_ledger_commits() -> None:
    directory, ledger, publisher = _world()
    at_commit: list[int] = []

    def check(rows: dict[str, LedgerRow]) -> None:
        assert set(rows) == IMPORTED
        ledger_backed(publisher, rows)
        at_commit.append(len(publisher.sent))

    ledger.before_commit = check
    await make_engine(directory, ledger, publisher).process(_batch())
    assert at_commit == [TOTAL]


async def test_a_failed_publish_leaves_nothing_claimed_for_another_worker() -> None:
    """After the rollback, a second engine on the same ledger imports the accounts."""
    directory, ledger, publisher = _world()
    publisher.fail_at_message(TOTAL)
    with pytest.raises(InjectedFailure):
        await make_engine(directory, ledger, publisher).process(_batch())
    other = FakePublisher()
    result = await make_engine(directory, ledger, other).process(_batch())
    assert result.decided == {"imported": 3, "no_policy": 1}
    assert set(ledger.rows) == {*IMPORTED, OLD_ROW.account_key}
    ledger_backed(other, ledger.rows, OLD)
