"""A property of ``BatchEngine.process``: random batches, random failures, redo until done.

Whatever fails where, once every batch went through: the ledger holds exactly
the accounts decided ``imported``, each once; every command id is
``command_id(key, type)``; a re-sent message equals the first one but for
``time``; nothing was imported for a mismatched partner or an unknown customer.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.enums import AccountType, Directory

from .fakes import FakeDirectory, FakeLedger, FakePublisher, InjectedFailure
from .support import (
    ADMIN,
    ALL_ADMIN,
    ALL_END_USER,
    COMMAND_TOPICS,
    END_USER,
    OTHER_PARTNER,
    PARTNER,
    RETRY_TOPIC,
    TOPIC_OF,
    body,
    customer,
    discovered,
    headers,
    key_of,
    ledger_backed,
    make_engine,
    mc,
    policy,
    record,
)
from .test_engine_delivery import _assert_same_ids_same_content

pytestmark = pytest.mark.unit

CUSTOMERS = {
    "c1": customer(
        "c1", end_user=policy(END_USER, **ALL_END_USER), admin=policy(ADMIN, **ALL_ADMIN)
    ),
    "c2": customer(
        "c2", documentation=False, shared=True,
        end_user=policy(END_USER, psa=mc(True, True), send_welcome_email=True),
    ),  # no administrator policy: no_policy
    "c3": customer(
        "c3", end_user=policy(END_USER, send_welcome_email=True),
        admin=policy(ADMIN, enable_password_rotation=True), pending=frozenset({END_USER}),
    ),
    "c4": customer(
        "c4", partner=OTHER_PARTNER, end_user=policy(END_USER, enable_self_serve_reset=True)
    ),
}  # fmt: skip
UNKNOWN = "c5"
INVALID = [b"", b"{", b"[]", b"\xff", json.dumps({"data": {}}).encode(), None]


@dataclass(frozen=True)
class Sent:
    """One record of a batch: the wire bytes and what an oracle knows of it."""

    value: bytes | None
    imported_key: str | None  # the key the contract says gets imported, if any
    outcome: str  # imported | no_policy | retry | partner_mismatch | invalid | ...


def _oracle(event: dict[str, Any]) -> Sent:
    name = next(n for n in [*CUSTOMERS, UNKNOWN] if discovered(n)["subject"] == event["subject"])
    value = json.dumps(event).encode()
    cust = CUSTOMERS.get(name)
    account_type = AccountType(event["data"]["account_type"])
    mismatch = cust is not None and cust.view.partner_id != event["partnerid"]
    if cust is not None and account_type in cust.pending and mismatch:
        # Either is never acted on; which comes first: test_engine_dlq.py.
        return Sent(value, None, "retry_or_partner_mismatch")
    if cust is None or account_type in cust.pending:
        return Sent(value, None, "retry")
    if mismatch:
        return Sent(value, None, "partner_mismatch")
    if cust.policies[account_type] is None:
        return Sent(value, None, "no_policy")
    return Sent(value, key_of(event, cust.view.partner_id), "imported")


@st.composite
def events(draw: st.DrawFn) -> Sent:
    if draw(st.integers(0, 5)) == 0:
        return Sent(draw(st.sampled_from(INVALID)), None, "invalid")
    name = draw(st.sampled_from([*CUSTOMERS, UNKNOWN]))
    event = discovered(
        name,
        account_type=draw(st.sampled_from(AccountType)),
        directory=draw(st.sampled_from(Directory)),
        external_id=draw(st.sampled_from(["x1", "x2"])),
        partnerid=PARTNER if draw(st.integers(0, 7)) else OTHER_PARTNER,
    )
    if name == "c4":
        event["partnerid"] = OTHER_PARTNER if draw(st.integers(0, 3)) else PARTNER
    # Event ids are unique (CloudEvents): the same id is the same event, redelivered.
    content = json.dumps([event["partnerid"], event["data"]], sort_keys=True)
    event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{content}|{draw(st.integers(0, 3))}"))
    return _oracle(event)


FAULTS = [
    "directory", "claim", "commit", "commit_ack", "publish_nth", "publish_topic", "acks",
]  # fmt: skip
TOPICS = [*TOPIC_OF.values(), RETRY_TOPIC, "account.discovered.dlq"]
Injection = tuple[str, int, str]


def _arm(fault: Injection, d: FakeDirectory, ledger: FakeLedger, p: FakePublisher) -> None:
    kind, n, topic = fault
    {
        "directory": d.fault.arm,
        "claim": ledger.claim_fault.arm,
        "commit": ledger.commit_fault.arm,
        "commit_ack": ledger.commit_ack_fault.arm,
        "publish_nth": lambda: p.fail_at_message(n),
        "publish_topic": lambda: p.fail_on_topic(topic),
        "acks": p.ack_fault.arm,
    }[kind]()


def _disarm(d: FakeDirectory, ledger: FakeLedger, p: FakePublisher) -> None:
    for fault in (d.fault, ledger.claim_fault, ledger.commit_fault, ledger.commit_ack_fault):
        fault.times = 0
    p.fail_at, p.topic_fault.times, p.ack_fault.times = None, 0, 0


async def _run(batches: list[list[Sent]], faults: list[list[Injection]]) -> None:
    directory, ledger, publisher = FakeDirectory(*CUSTOMERS.values()), FakeLedger(), FakePublisher()
    ledger.before_commit = lambda rows: ledger_backed(publisher, rows)
    engine = make_engine(directory, ledger, publisher)
    offset = failed = 0
    for batch, batch_faults in zip(batches, faults, strict=True):
        records = [record(s.value, offset=offset + i) for i, s in enumerate(batch)]
        offset += len(batch)
        pending = list(batch_faults)
        # The hot path redoes a batch until it goes through. Faults left over
        # after a success hit a redelivery of the same batch (its offsets were
        # not committed), which must be harmless too.
        while True:
            if pending:
                _arm(pending.pop(0), directory, ledger, publisher)
            try:
                await engine.process(records)
            except InjectedFailure:
                failed += 1
                assert ledger.open == 0
                ledger_backed(publisher, ledger.rows)
                continue
            _disarm(directory, ledger, publisher)
            if not pending:
                break
        ledger_backed(publisher, ledger.rows)

    event(f"failed attempts: {min(failed, 3)}{'+' if failed > 3 else ''}")
    every = [s for b in batches for s in b]
    imported = {s.imported_key for s in every if s.imported_key}
    assert set(ledger.rows) == imported
    ledger_backed(publisher, ledger.rows)
    _assert_same_ids_same_content(publisher.sent)

    decided: dict[str, set[str]] = {"imported": set(), "no_policy": set()}
    for message in publisher.sent:
        if message.topic == "import.decisions":
            envelope = body(message)
            decided[envelope["data"]["outcome"]].add(envelope["subject"])
        elif message.topic in COMMAND_TOPICS:
            assert body(message)["subject"] in imported
    assert decided["imported"] == imported

    reasons = {(m.value, headers(m)["x-error-reason"]) for m in publisher.on_topic(
        "account.discovered.dlq"
    )}  # fmt: skip
    retried = {m.value for m in publisher.on_topic(RETRY_TOPIC)}
    for s in every:
        if s.outcome == "partner_mismatch":
            assert (s.value, "partner_mismatch") in reasons
        elif s.outcome == "invalid":
            assert any(v == s.value and r.startswith("invalid_") for v, r in reasons)
        elif s.outcome == "retry":
            assert s.value in retried
        elif s.outcome == "retry_or_partner_mismatch":
            assert s.value in retried or (s.value, "partner_mismatch") in reasons


injections = st.tuples(st.sampled_from(FAULTS), st.integers(1, 12), st.sampled_from(TOPICS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.lists(events(), max_size=8), st.lists(injections, max_size=3)),
        min_size=1,
        max_size=4,
    )
)
def test_any_failures_redone_end_with_exactly_the_imported_accounts(
    plan: list[tuple[list[Sent], list[Injection]]],
) -> None:
    batches = [batch for batch, _ in plan]
    # Redeliveries: a record may come again in a later batch, byte for byte.
    if len(batches) > 1 and batches[0]:
        batches[-1] = [*batches[-1], batches[0][0]]
    asyncio.run(_run(batches, [f for _, f in plan]))
