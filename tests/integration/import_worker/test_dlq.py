"""Bad input and unknown customers (docs/contract.md §3): dead-lettered with the original
bytes and the five ``x-*`` headers, retried with back-off first where that can help, and
the worker keeps going."""

import json
import uuid

import asyncpg
import pytest
from aiokafka.structs import RecordMetadata

from schemas.enums import AccountType

from .events import account, customer, discovered, end_user_options, new_partner, policy
from .support import Harness, Out
from .worker import wait_until

pytestmark = pytest.mark.timeout(120)

HEADERS = {
    "x-error-reason",
    "x-error-detail",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
}


def dead_letter_of(h: Harness, landed: RecordMetadata) -> list[Out]:
    """The DLQ records whose origin is the ``account.discovered`` record at ``landed``."""
    return [
        r
        for r in h.reader.records
        if r.topic == h.topics.account_discovered_dlq
        and r.headers.get("x-original-topic") == h.topics.account_discovered.encode()
        and r.headers.get("x-original-partition") == str(landed.partition).encode()
        and r.headers.get("x-original-offset") == str(landed.offset).encode()
    ]


def retries_of(h: Harness, value: bytes) -> list[Out]:
    return [r for r in h.reader.records if r.topic == h.worker.retry_topic and r.value == value]


async def test_bad_records_are_dead_lettered_and_the_worker_goes_on(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    c = customer(partner, end_user=eu.id)
    await harness.project(worker_db, eu, c)

    good = json.loads(discovered(partner, account(c.id)).model_dump_json())
    no_username = {**good, "data": {k: v for k, v in good["data"].items() if k != "username"}}
    cases: list[tuple[str, bytes | None]] = [
        ("invalid_json", b'{"specversion": "1.0", "id": '),
        ("invalid_json", b"\xff\xfe not even text"),
        ("invalid_json", None),  # a tombstone: no value at all
        ("invalid_envelope", b'{"hello": "world"}'),
        ("invalid_envelope", b"[1, 2, 3]"),
        ("invalid_envelope", json.dumps({**good, "type": "account.lost"}).encode()),
        ("invalid_envelope", json.dumps({**good, "specversion": "0.3"}).encode()),
        ("invalid_data", json.dumps(no_username).encode()),
        (
            "invalid_data",
            json.dumps({**good, "data": {**good["data"], "account_type": "robot"}}).encode(),
        ),
        (
            "partner_mismatch",
            discovered(new_partner(), account(c.id)).model_dump_json().encode(),
        ),
    ]
    key = str(c.id).encode()
    keys = [None if value == b"[1, 2, 3]" else key for _, value in cases]  # one without a key
    landed = []
    for (_, value), k in zip(cases, keys, strict=True):
        landed.append(await harness.bus.send(harness.topics.account_discovered, k, value))
    valid = discovered(partner, account(c.id))
    decision, commands = await harness.decide(valid)
    assert decision.envelope["data"]["outcome"] == "imported"
    assert len(commands) == 3

    for (reason, value), k, meta in zip(cases, keys, landed, strict=True):
        found = await harness.reader.wait_for(
            lambda _, meta=meta: dead_letter_of(harness, meta), f"the DLQ record for {reason}"
        )
        assert len(found) == 1, (reason, found)
        dead = found[0]
        assert set(dead.headers) >= HEADERS, dead.headers
        assert dead.header("x-error-reason") == reason, (value, dead.header("x-error-detail"))
        assert dead.header("x-error-detail")
        assert dead.value == value, reason
        assert dead.key == k
    mismatch = cases[-1][1]
    assert mismatch is not None
    assert harness.reader.caused_by(json.loads(mismatch)["id"]) == []

    async def counted() -> bool:  # metrics are recorded once a batch is committed
        sample = 'import_dead_letters_total{reason="invalid_json"}'
        return await harness.worker.metric(harness.http, sample) >= 3

    await wait_until(counted, "three invalid_json dead letters in /metrics")
    assert harness.worker.alive()


async def test_unknown_customer_is_retried_until_it_is_known(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options(send_welcome_email=False))
    await harness.project(worker_db, eu)
    c = customer(partner, end_user=eu.id, psa=("halo", "h-1"))
    event = discovered(partner, account(c.id))
    value = event.model_dump_json().encode()
    landed = await harness.bus.discovered(event)

    [first] = await harness.reader.wait_for(lambda _: retries_of(harness, value), "a retry")
    assert first.header("x-attempt") == "1"
    assert first.header("x-original-topic") == harness.topics.account_discovered
    assert first.header("x-original-offset") == str(landed.offset)
    assert harness.reader.caused_by(event.id) == []
    await harness.project(worker_db, c)  # the customer event arrives meanwhile

    decision, commands = await harness.outcome(event)
    data = decision.envelope["data"]
    assert (data["outcome"], data["policy_id"]) == ("imported", str(eu.id))
    assert {c.envelope["type"] for c in commands} == {
        "psa.contact.link",
        "identity.self_service_reset.enable",
        "identity.m365_password_sync.enable",
    }
    await harness.offsets.wait_past(harness.topics.account_discovered, [landed])
    await harness.reader.drain()
    assert dead_letter_of(harness, landed) == []
    decisions = harness.reader.caused_by(event.id, [harness.topics.import_decisions])
    assert len({d.envelope["id"] for d in decisions}) == 1


async def test_customer_that_never_appears_is_dead_lettered(harness: Harness) -> None:
    partner = new_partner()
    event = discovered(partner, account(uuid.uuid4()))
    value = event.model_dump_json().encode()
    # An agent's copies of the worker's retry headers must not shorten the back-off.
    forged = [
        ("x-attempt", b"99"),
        ("x-original-topic", b"elsewhere"),
        ("x-original-partition", b"0"),
        ("x-original-offset", b"12345"),
    ]
    key = str(event.data.customer_id).encode()
    landed = await harness.bus.send(harness.topics.account_discovered, key, value, forged)

    [dead] = await harness.reader.wait_for(
        lambda _: dead_letter_of(harness, landed), "the unknown customer's DLQ record"
    )
    assert dead.header("x-error-reason") == "unknown_customer"
    assert dead.value == value
    assert dead.key == str(event.data.customer_id).encode()
    attempts = sorted(int(r.header("x-attempt")) for r in retries_of(harness, value))
    assert attempts == [1, 2, 3]  # RETRY_DELAYS_SECONDS has three delays
    assert harness.reader.caused_by(event.id) == []


async def test_a_customer_the_worker_cannot_read_stalls_nothing_but_its_own_records(
    harness: Harness, worker_db: asyncpg.Pool
) -> None:
    """A poison record (here: a projected row no code path expects, as a hand edit or a
    newer writer could leave) is isolated and dead-lettered; its partition goes on."""
    partner = new_partner()
    eu = policy(partner, AccountType.END_USER, end_user_options())
    broken = customer(partner, end_user=eu.id)
    fine = customer(partner, end_user=eu.id)
    await harness.project(worker_db, eu, broken, fine)
    await worker_db.execute(
        "UPDATE import_worker.customers SET psa_provider = 'syncro' WHERE id = $1", broken.id
    )

    poison = discovered(partner, account(broken.id))
    landed = await harness.bus.send(
        harness.topics.account_discovered,
        str(broken.id).encode(),
        poison.model_dump_json().encode(),
    )
    decision, commands = await harness.decide(discovered(partner, account(fine.id)))
    assert decision.envelope["data"]["outcome"] == "imported"
    assert len(commands) == 3

    [dead] = await harness.reader.wait_for(
        lambda _: dead_letter_of(harness, landed), "the poison record in the DLQ"
    )
    assert dead.header("x-error-reason") == "processing_failed"
    assert dead.header("x-error-detail").startswith("processing failed: ValidationError")
    assert dead.value == poison.model_dump_json().encode()
    assert harness.reader.caused_by(str(poison.id)) == []
    assert harness.worker.alive()
