"""A record the worker cannot process must not stall its partition, and an outage
must never send anything to the DLQ (``service_layer/isolation.py``).

The poison here is a customer whose directory lookup raises an unexpected
error: any record naming it breaks any batch it is in, as a code bug meeting
odd data would.
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from services.import_worker.domain.inbound import InRecord
from services.import_worker.service_layer.engine import BatchEngine
from services.import_worker.service_layer.isolation import Abandoned, PoisonIsolator
from services.import_worker.service_layer.ports import CustomerRecord
from services.infra.failures import is_transient

from .fakes import FakeDirectory, FakeLedger, FakePublisher
from .support import (
    END_USER,
    body,
    customer,
    customer_id,
    discovered,
    headers,
    make_engine,
    policy,
    record,
)
from .test_hot_path_admit import service

pytestmark = pytest.mark.unit

DLQ = "account.discovered.dlq"
DECISIONS = "import.decisions"


class PoisonedDirectory(FakeDirectory):
    """Raises ``error`` for any lookup that includes a poisoned customer."""

    def __init__(self, *customers: CustomerRecord, error: Exception) -> None:
        super().__init__(*customers)
        self.poisoned: set[uuid.UUID] = set()
        self.error = error
        self.heal_after: int | None = None  # lookups of a poisoned id that fail, then fine

    async def lookup(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CustomerRecord]:
        failing = self.heal_after is None or self.heal_after > 0
        if failing and self.poisoned & set(customer_ids):
            if self.heal_after is not None:
                self.heal_after -= 1
            raise self.error
        return await super().lookup(customer_ids)


def setup(
    n: int, poisoned_at: Sequence[int], error: Exception | None = None
) -> tuple[list[InRecord], PoisonedDirectory, FakeLedger, FakePublisher, BatchEngine]:
    """``n`` records of distinct customers with a policy; the ones at ``poisoned_at`` poison."""
    directory = PoisonedDirectory(error=error or KeyError("surprise"))
    records = []
    for i in range(n):
        name = f"c{i}"
        directory.add(customer(name, end_user=policy(END_USER, send_welcome_email=True)))
        records.append(record(discovered(name, external_id=f"ext-{i}"), offset=i))
        if i in poisoned_at:
            directory.poisoned.add(customer_id(name))
    ledger, publisher = FakeLedger(), FakePublisher()
    return records, directory, ledger, publisher, make_engine(directory, ledger, publisher)


def decided_offsets(publisher: FakePublisher) -> list[int]:
    """Input offsets of the decided records, in the order their decisions left."""
    subjects = [body(m)["subject"] for m in publisher.sent if m.topic == DECISIONS]
    return [int(s.rsplit(":ext-", 1)[1]) for s in subjects]


def isolator(engine: BatchEngine, **kwargs: Any) -> PoisonIsolator:
    return PoisonIsolator(engine, is_transient, pause=0, **kwargs)


async def test_one_poison_record_goes_to_the_dlq_and_the_rest_are_decided_in_order() -> None:
    records, _, ledger, publisher, engine = setup(10, poisoned_at=[6])

    result = await isolator(engine).process(records)

    assert result.decided == {"imported": 9}
    assert result.dead_letters == {"processing_failed": 1}
    assert decided_offsets(publisher) == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    [dead] = [m for m in publisher.sent if m.topic == DLQ]
    assert dead.value == records[6].value  # the original bytes
    h = headers(dead)
    assert h["x-error-reason"] == "processing_failed"
    assert h["x-error-detail"] == "processing failed: KeyError: 'surprise'"
    assert (h["x-original-topic"], h["x-original-partition"], h["x-original-offset"]) == (
        "account.discovered", "0", "6",
    )  # fmt: skip
    assert len(ledger.rows) == 9


async def test_several_poison_records_are_each_dead_lettered() -> None:
    records, _, _, publisher, engine = setup(33, poisoned_at=[0, 17, 18, 32])

    result = await isolator(engine).process(records)

    assert result.dead_letters == {"processing_failed": 4}
    dead = [
        json.loads(m.value or b"")["data"]["external_id"] for m in publisher.sent if m.topic == DLQ
    ]
    assert dead == ["ext-0", "ext-17", "ext-18", "ext-32"]
    assert decided_offsets(publisher) == [i for i in range(33) if i not in (0, 17, 18, 32)]


async def test_a_record_that_fails_alone_once_is_retried_not_dead_lettered() -> None:
    records, directory, _, publisher, engine = setup(4, poisoned_at=[2])
    directory.heal_after = 2  # fails in the batch, fails alone once, then succeeds

    result = await isolator(engine, attempts=3).process(records)

    assert result.dead_letters == {}
    assert decided_offsets(publisher) == [0, 1, 2, 3]


async def test_a_record_gets_exactly_the_attempts_configured_before_the_dlq() -> None:
    records, directory, _, publisher, engine = setup(1, poisoned_at=[0])
    directory.heal_after = 3  # would succeed on a 4th try alone

    result = await isolator(engine, attempts=3).process(records)

    assert result.dead_letters == {"processing_failed": 1}
    assert decided_offsets(publisher) == []


@pytest.mark.parametrize(
    "outage",
    [ConnectionRefusedError(111, "refused"), TimeoutError("pool"), OSError("reset")],
    ids=["refused", "timeout", "oserror"],
)
async def test_an_outage_while_isolating_is_raised_and_nothing_is_dead_lettered(
    outage: Exception,
) -> None:
    records, _, _, publisher, engine = setup(8, poisoned_at=[5], error=outage)

    with pytest.raises(type(outage)):
        await isolator(engine).process(records)

    assert [m for m in publisher.sent if m.topic == DLQ] == []


async def test_isolation_stops_when_the_batch_is_given_up() -> None:
    records, _, _, publisher, engine = setup(8, poisoned_at=[5])

    with pytest.raises(Abandoned):
        await isolator(engine, given_up=lambda: True).process(records)
    assert publisher.sent == []


# -- through the hot path's retry loop -------------------------------------------------


async def test_the_hot_path_lets_a_batch_with_a_poison_record_through() -> None:
    records, _, _, publisher, engine = setup(5, poisoned_at=[3])
    svc = service(engine)
    svc.sleep = _no_sleep  # type: ignore[method-assign]

    result = await svc._process_until_done(records)

    assert result is not None
    assert result.dead_letters == {"processing_failed": 1}
    assert decided_offsets(publisher) == [0, 1, 2, 4]


async def test_the_hot_path_waits_out_an_outage_without_dead_lettering() -> None:
    records, directory, _, publisher, engine = setup(5, poisoned_at=[3])
    directory.error = ConnectionResetError("postgres went away")
    directory.heal_after = 25  # a long outage: 25 failed attempts, then back
    svc = service(engine)
    svc.sleep = _no_sleep  # type: ignore[method-assign]

    result = await svc._process_until_done(records)

    assert result is not None
    assert result.dead_letters == {}
    assert decided_offsets(publisher) == [0, 1, 2, 3, 4]
    assert svc.metrics.failures.labels("ConnectionResetError")._value.get() == 25


async def _no_sleep(seconds: float) -> None:
    return None


def test_the_classifier_tells_outages_from_bugs() -> None:
    import asyncpg
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
        NotLeaderForPartitionError,
    )

    outages = [
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError(),
        asyncpg.exceptions.CannotConnectNowError(),
        asyncpg.exceptions.AdminShutdownError(),
        asyncpg.exceptions.TooManyConnectionsError(),
        asyncpg.exceptions.SerializationError(),
        asyncpg.InterfaceError("connection is closed"),
        KafkaConnectionError(),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
    ]
    bugs = [
        KeyError("x"),
        ValueError("x"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        asyncpg.exceptions.DataError(),
        asyncpg.exceptions.UniqueViolationError(),
        MessageSizeTooLargeError(),
    ]
    assert [is_transient(e) for e in outages] == [True] * len(outages)
    assert [is_transient(e) for e in bugs] == [False] * len(bugs)


async def test_a_dead_letter_the_broker_refuses_is_sent_without_its_value() -> None:
    records, _, _, publisher, engine = setup(3, poisoned_at=[1])
    publisher.fail_on_topic(DLQ, times=1)  # e.g. too large once the headers are added

    result = await isolator(engine).process(records)

    assert result.dead_letters == {"processing_failed": 1}
    [dead] = [m for m in publisher.sent if m.topic == DLQ]
    assert dead.value is None
    assert headers(dead)["x-error-detail"].startswith("value dropped:")
    assert headers(dead)["x-original-offset"] == "1"
    assert decided_offsets(publisher) == [0, 2]
