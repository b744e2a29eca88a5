"""In-memory fakes of the batch engine's ports, each with failure switches.

A :class:`Fault` is a switch that raises :class:`InjectedFailure` the next
``times`` times it is tripped, then stays quiet: a batch that failed can be
redone and succeed, as the hot path does.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from services.import_worker.service_layer.ports import CustomerRecord, LedgerRow, OutMessage


class InjectedFailure(Exception):
    """Raised by a fake where a test asked for a failure."""


@dataclass
class Fault:
    times: int = 0
    tripped: int = 0

    def arm(self, times: int = 1) -> None:
        self.times = times

    def trip(self, where: str) -> None:
        if self.times > 0:
            self.times -= 1
            self.tripped += 1
            raise InjectedFailure(where)


class FakeDirectory:
    """Customers (with their effective policies) set up by the test."""

    def __init__(self, *customers: CustomerRecord) -> None:
        self.customers: dict[uuid.UUID, CustomerRecord] = {c.view.id: c for c in customers}
        self.lookups: list[list[uuid.UUID]] = []
        self.fault = Fault()

    def add(self, customer: CustomerRecord) -> None:
        self.customers[customer.view.id] = customer

    async def lookup(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CustomerRecord]:
        self.lookups.append(list(customer_ids))
        self.fault.trip("directory lookup")
        return {i: self.customers[i] for i in customer_ids if i in self.customers}


class FakeLedgerTransaction:
    def __init__(self, ledger: "FakeLedger") -> None:
        self.ledger = ledger
        self.pending: dict[str, LedgerRow] = {}
        self.committed = False

    async def claim(self, rows: Sequence[LedgerRow]) -> set[str]:
        self.ledger.claims.append(list(rows))
        self.ledger.claim_fault.trip("ledger claim")
        fresh: set[str] = set()
        for row in rows:
            key = row.account_key
            if key not in self.ledger.rows and key not in self.pending:
                self.pending[key] = row
                fresh.add(key)
        return fresh

    async def imported(self, keys: Sequence[str]) -> set[str]:
        return {k for k in keys if k in self.ledger.rows}

    async def commit(self) -> None:
        self.ledger.commit_fault.trip("ledger commit")
        if self.ledger.before_commit is not None:
            self.ledger.before_commit(dict(self.pending))
        self.ledger.rows.update(self.pending)
        self.committed = True
        self.ledger.commits += 1
        # The commit is durable, but its acknowledgement is lost on the way back.
        self.ledger.commit_ack_fault.trip("ledger commit acknowledgement")


class FakeLedger:
    """Claimed keys become visible on commit only; anything else rolls back."""

    def __init__(self, *rows: LedgerRow) -> None:
        self.rows: dict[str, LedgerRow] = {r.account_key: r for r in rows}
        self.claims: list[list[LedgerRow]] = []
        self.commits = 0
        self.rollbacks = 0
        self.open = 0
        self.claim_fault = Fault()
        self.commit_fault = Fault()
        self.commit_ack_fault = Fault()
        # Called with the rows about to become durable (checks the order of effects).
        self.before_commit: Callable[[dict[str, LedgerRow]], None] | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeLedgerTransaction]:
        tx = FakeLedgerTransaction(self)
        self.open += 1
        try:
            yield tx
        finally:
            self.open -= 1
            if not tx.committed:
                tx.pending.clear()
                self.rollbacks += 1


@dataclass
class FakePublisher:
    """Records what the broker acknowledged, in order.

    ``fail_at``: the Nth message handed over from now on (1-based) is not sent
    and the call raises; the messages before it in the same call were sent.
    ``topic_fault``: raise at the first message for ``fail_topic``.
    ``ack_fault``: every message reached the broker, but the acks were lost.
    """

    sent: list[OutMessage] = field(default_factory=list)
    calls: int = 0
    fail_at: int | None = None
    fail_topic: str | None = None
    topic_fault: Fault = field(default_factory=Fault)
    ack_fault: Fault = field(default_factory=Fault)
    _handed: int = 0

    def fail_at_message(self, n: int) -> None:
        self.fail_at, self._handed = n, 0

    def fail_on_topic(self, topic: str, times: int = 1) -> None:
        self.fail_topic = topic
        self.topic_fault.arm(times)

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        self.calls += 1
        for message in messages:
            self._handed += 1
            if self.fail_at is not None and self._handed == self.fail_at:
                self.fail_at = None
                raise InjectedFailure(f"publish of message {self._handed}")
            if message.topic == self.fail_topic:
                self.topic_fault.trip(f"publish to {message.topic}")
            self.sent.append(message)
        self.ack_fault.trip("broker acknowledgements")

    def on_topic(self, topic: str) -> list[OutMessage]:
        return [m for m in self.sent if m.topic == topic]

    def clear(self) -> None:
        self.sent.clear()
