"""The engine's memory of imported accounts: rediscoveries without a ledger round trip."""

import pytest

from services.import_worker.service_layer.engine import ImportedKeys

from .fakes import FakeDirectory, FakeLedger, FakePublisher, InjectedFailure
from .support import END_USER, customer, discovered, key_of, make_engine, policy, record

pytestmark = pytest.mark.unit


def test_imported_keys_keep_the_newest_within_their_size() -> None:
    keys = ImportedKeys(3)
    keys.add_all(["a", "b", "c"])
    keys.add_all(["d"])
    assert "a" not in keys
    assert all(k in keys for k in "bcd")
    assert len(keys) == 3


def test_a_size_of_zero_remembers_nothing() -> None:
    keys = ImportedKeys(0)
    keys.add_all(["a"])
    assert "a" not in keys


async def test_a_rediscovery_after_an_import_does_not_ask_the_ledger() -> None:
    ledger, publisher = FakeLedger(), FakePublisher()
    engine = make_engine(
        FakeDirectory(customer(end_user=policy(END_USER, send_welcome_email=True))),
        ledger,
        publisher,
    )
    event = discovered(external_id="cached-1")
    first = await engine.process([record(event, 0)])
    assert first.decided == {"imported": 1}
    claims_after_import = len(ledger.claims)

    again = await engine.process([record(discovered(external_id="cached-1"), 1)])

    assert again.rediscovered == 1
    assert again.decided == {}
    assert len(ledger.claims) == claims_after_import  # no claim for a known key
    assert key_of(event) in engine.imported


async def test_keys_are_remembered_only_once_the_ledger_committed() -> None:
    ledger = FakeLedger()
    publisher = FakePublisher()
    publisher.ack_fault.arm()  # the broker's acks are lost: the ledger rolls back
    engine = make_engine(
        FakeDirectory(customer(end_user=policy(END_USER, send_welcome_email=True))),
        ledger,
        publisher,
    )
    event = discovered(external_id="not-yet")
    with pytest.raises(InjectedFailure):
        await engine.process([record(event, 0)])
    assert key_of(event) not in engine.imported
    redo = await engine.process([record(event, 0)])
    assert redo.decided == {"imported": 1}
    assert key_of(event) in engine.imported
