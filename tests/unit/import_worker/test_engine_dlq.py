"""Dead letters and the retry delay queue of ``BatchEngine.process`` (docs/contract.md §3)."""

import json
import time
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.import_worker.domain.inbound import InRecord, Origin
from services.import_worker.entrypoints.hot_path import to_in_record
from services.import_worker.service_layer.ports import OutMessage

from .fakes import FakeDirectory, FakeLedger, FakePublisher
from .support import (
    ADMIN,
    DELAYS,
    DISCOVERED,
    END_USER,
    OTHER_PARTNER,
    RETRY_TOPIC,
    assert_valid,
    body,
    customer,
    discovered,
    headers,
    key_of,
    make_engine,
    policy,
    record,
)

pytestmark = pytest.mark.unit

DLQ = "account.discovered.dlq"


def _without(field: str) -> dict[str, Any]:
    event = discovered()
    del event[field]
    return event


def _with_data(**changes: Any) -> dict[str, Any]:
    event = discovered()
    event["data"] = {k: v for k, v in (event["data"] | changes).items() if v is not ...}
    return event


VALID = json.dumps(discovered()).encode()
BAD: dict[str, tuple[bytes | None, str]] = {
    "garbage_bytes": (b"\xff\xfe\x00garbage", "invalid_json"),
    "truncated_json": (VALID[: len(VALID) // 2], "invalid_json"),
    "no_value": (None, "invalid_json"),
    "empty_value": (b"", "invalid_json"),
    "not_an_object": (b"[1, 2, 3]", "invalid_envelope"),
    "a_json_string": (b'"account.discovered"', "invalid_envelope"),
    "missing_specversion": (json.dumps(_without("specversion")).encode(), "invalid_envelope"),
    "wrong_specversion": (
        json.dumps(discovered() | {"specversion": "0.3"}).encode(), "invalid_envelope",
    ),
    "wrong_type": (
        json.dumps(discovered() | {"type": "customer.added"}).encode(), "invalid_envelope",
    ),
    "missing_id": (json.dumps(_without("id")).encode(), "invalid_envelope"),
    "bad_partnerid": (
        json.dumps(discovered() | {"partnerid": "a:b"}).encode(), "invalid_envelope",
    ),
    "data_not_an_object": (json.dumps(discovered() | {"data": "x"}).encode(), "invalid_envelope"),
    "bad_account_type": (json.dumps(_with_data(account_type="boss")).encode(), "invalid_data"),
    "missing_username": (json.dumps(_with_data(username=...)).encode(), "invalid_data"),
}  # fmt: skip


def _engine(*customers: Any) -> tuple[Any, FakePublisher, FakeLedger]:
    publisher, ledger = FakePublisher(), FakeLedger()
    return make_engine(FakeDirectory(*customers), ledger, publisher), publisher, ledger


def _assert_dead_letter(
    message: OutMessage, rec: InRecord, reason: str, origin: tuple[str, int, int]
) -> None:
    assert message.topic == DLQ
    assert (message.key, message.value) == (rec.key, rec.value)
    h = headers(message)
    assert set(h) == {
        "x-error-reason",
        "x-error-detail",
        "x-original-topic",
        "x-original-partition",
        "x-original-offset",
    }
    assert h["x-error-reason"] == reason
    assert h["x-error-detail"]
    assert (h["x-original-topic"], h["x-original-partition"], h["x-original-offset"]) == (
        origin[0], str(origin[1]), str(origin[2]),
    )  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), BAD.values(), ids=BAD.keys())
async def test_bad_input_is_dead_lettered_at_once(value: bytes | None, reason: str) -> None:
    engine, publisher, ledger = _engine(
        customer(end_user=policy(END_USER, send_welcome_email=True))
    )
    bad = record(value, offset=41, partition=3, key=b"\x00raw-key")
    good = record(discovered(external_id="good"), offset=42, partition=3)

    result = await engine.process([bad, good])

    dead = [m for m in publisher.sent if m.topic == DLQ]
    assert len(dead) == 1
    _assert_dead_letter(dead[0], bad, reason, (DISCOVERED, 3, 41))
    assert result.dead_letters == {reason: 1}
    # The worker never stops on bad input: the good record is decided.
    assert result.decided == {"imported": 1}
    assert set(ledger.rows) == {key_of(discovered(external_id="good"))}


async def test_a_dead_letter_without_a_key_keeps_none() -> None:
    engine, publisher, _ = _engine()
    bad = record(b"nope", key=None)
    await engine.process([bad])
    _assert_dead_letter(publisher.sent[0], bad, "invalid_json", (DISCOVERED, 0, 0))


async def test_partner_mismatch_is_dead_lettered_and_never_acted_on() -> None:
    engine, publisher, ledger = _engine(
        customer(end_user=policy(END_USER, send_welcome_email=True))
    )
    rec = record(discovered(partnerid=OTHER_PARTNER), offset=5)
    result = await engine.process([rec])
    assert len(publisher.sent) == 1
    _assert_dead_letter(publisher.sent[0], rec, "partner_mismatch", (DISCOVERED, 0, 5))
    assert ledger.rows == {}
    assert result.dead_letters == {"partner_mismatch": 1}
    assert result.decided == {}


async def test_partner_mismatch_without_a_policy_is_not_recorded_either() -> None:
    engine, publisher, _ = _engine(customer())
    await engine.process([record(discovered(partnerid=OTHER_PARTNER))])
    assert [m.topic for m in publisher.sent] == [DLQ]


@pytest.mark.parametrize("attempt", [0, len(DELAYS)])
async def test_partner_mismatch_is_not_retried_while_a_policy_is_pending(attempt: int) -> None:
    """The customer is known, so is its partner: nothing to wait for.

    Retrying would end, after the last delay, as ``unknown_customer`` for a
    customer the worker knows: the wrong reason.
    """
    pending = customer(end_user=policy(END_USER), pending=frozenset({END_USER}))
    engine, publisher, _ = _engine(pending)
    rec = record(discovered(partnerid=OTHER_PARTNER), offset=5, attempt=attempt)
    await engine.process([rec])
    assert [m.topic for m in publisher.sent] == [DLQ]
    _assert_dead_letter(publisher.sent[0], rec, "partner_mismatch", (DISCOVERED, 0, 5))


async def test_a_retried_record_is_dead_lettered_with_its_original_coordinates() -> None:
    engine, publisher, _ = _engine()
    rec = record(
        b"{", topic=RETRY_TOPIC, partition=1, offset=7, attempt=2,
        origin=Origin(DISCOVERED, 4, 1234),
    )  # fmt: skip
    await engine.process([rec])
    _assert_dead_letter(publisher.sent[0], rec, "invalid_json", (DISCOVERED, 4, 1234))


def _assert_retry(message: OutMessage, rec: InRecord, attempt: int, before_ms: float) -> None:
    assert message.topic == RETRY_TOPIC
    assert (message.key, message.value) == (rec.key, rec.value)
    h = headers(message)
    assert h["x-attempt"] == str(attempt)
    delay_ms = DELAYS[attempt - 1] * 1000
    not_before = int(h["x-not-before"])
    assert before_ms + delay_ms - 1 <= not_before <= time.time() * 1000 + delay_ms + 1
    assert not_before > time.time() * 1000
    origin = rec.first_seen
    assert (h["x-original-topic"], h["x-original-partition"], h["x-original-offset"]) == (
        origin.topic, str(origin.partition), str(origin.offset),
    )  # fmt: skip


@pytest.mark.parametrize("attempt", range(len(DELAYS)))
async def test_an_unknown_customer_is_retried_with_back_off(attempt: int) -> None:
    engine, publisher, ledger = _engine()
    origin = Origin(DISCOVERED, 2, 99) if attempt else None
    rec = record(
        discovered(), topic=RETRY_TOPIC if attempt else DISCOVERED, offset=10, partition=1,
        attempt=attempt, origin=origin,
    )  # fmt: skip
    before_ms = time.time() * 1000
    result = await engine.process([rec])
    assert len(publisher.sent) == 1
    _assert_retry(publisher.sent[0], rec, attempt + 1, before_ms)
    assert result.retried == 1
    assert result.decided == {}
    assert ledger.rows == {}


async def test_after_the_last_delay_an_unknown_customer_is_dead_lettered() -> None:
    engine, publisher, _ = _engine()
    rec = record(
        discovered(), topic=RETRY_TOPIC, offset=3, attempt=len(DELAYS),
        origin=Origin(DISCOVERED, 6, 60),
    )  # fmt: skip
    result = await engine.process([rec])
    assert len(publisher.sent) == 1
    _assert_dead_letter(publisher.sent[0], rec, "unknown_customer", (DISCOVERED, 6, 60))
    assert result.dead_letters == {"unknown_customer": 1}
    assert result.retried == 0


async def test_a_pending_policy_is_retried_but_the_other_account_type_is_decided() -> None:
    pending = customer(
        end_user=policy(END_USER, send_welcome_email=True), pending=frozenset({ADMIN})
    )
    engine, publisher, ledger = _engine(pending)
    admin = record(discovered(account_type=ADMIN, external_id="adm"), offset=0)
    user = record(discovered(external_id="usr"), offset=1)
    before_ms = time.time() * 1000
    result = await engine.process([admin, user])
    retries = [m for m in publisher.sent if m.topic == RETRY_TOPIC]
    assert len(retries) == 1
    _assert_retry(retries[0], admin, 1, before_ms)
    assert result.decided == {"imported": 1}
    assert set(ledger.rows) == {key_of(discovered(external_id="usr"))}


def _consumed(message: OutMessage, offset: int) -> InRecord:
    """The retry message as the hot path reads it back from the retry topic."""
    return to_in_record(
        ConsumerRecord(
            topic=message.topic, partition=0, offset=offset, timestamp=0, timestamp_type=0,
            key=message.key, value=message.value, checksum=None, serialized_key_size=0,
            serialized_value_size=0, headers=list(message.headers),
        )
    )  # fmt: skip


async def test_the_whole_back_off_then_unknown_customer() -> None:
    engine, publisher, _ = _engine()
    rec = record(discovered(), offset=77, partition=5)
    for i in range(len(DELAYS)):
        await engine.process([rec])
        assert len(publisher.sent) == i + 1
        rec = _consumed(publisher.sent[-1], offset=i)
        assert rec.attempt == i + 1
    await engine.process([rec])
    _assert_dead_letter(publisher.sent[-1], rec, "unknown_customer", (DISCOVERED, 5, 77))


@pytest.mark.parametrize("pending", [False, True], ids=["unknown", "policy_pending"])
async def test_a_customer_known_before_the_retry_is_decided_normally(pending: bool) -> None:
    cust = customer(end_user=policy(END_USER, send_welcome_email=True))
    directory = FakeDirectory()
    if pending:
        directory.add(customer(pending=frozenset({END_USER})))
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    event = discovered(event_id="evt-1")
    await engine.process([record(event, offset=8)])
    retry = _consumed(publisher.sent[0], offset=0)
    publisher.clear()

    directory.add(cust)
    result = await engine.process([retry])

    envelopes = [assert_valid(m) for m in publisher.sent]
    assert [e["type"] for e in envelopes] == [
        "notification.welcome_email.send", "import.decision.recorded",
    ]  # fmt: skip
    assert all(e["causationid"] == "evt-1" for e in envelopes)
    assert body(publisher.sent[1])["data"]["outcome"] == "imported"
    assert result.decided == {"imported": 1}
    assert set(ledger.rows) == {key_of(event)}


async def test_a_policy_still_pending_after_the_last_retry_says_so_in_the_detail() -> None:
    """The customer is known: the detail must not call it unknown (the reason is still
    the contract's ``unknown_customer``, the only one for "gave up waiting")."""
    pending = customer(end_user=policy(END_USER), pending=frozenset({END_USER}))
    engine, publisher, _ = _engine(pending)
    await engine.process([record(discovered(), attempt=len(DELAYS))])
    [dead] = publisher.sent
    assert headers(dead)["x-error-reason"] == "unknown_customer"
    assert headers(dead)["x-error-detail"] == (
        f"the end_user policy of the customer still unknown after {len(DELAYS)} retries"
    )
