"""What the batch engine needs from the outside world, as small protocols.

The real adapters are PostgreSQL (directory, ledger) and Kafka (publisher);
the unit tests use in-memory fakes with failure switches.
"""

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from schemas.enums import AccountType
from services.decision import CustomerView, EffectivePolicy


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A record to produce: topic, key, value, headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer as projected by the worker, with its policy per account type.

    ``pending`` lists account types whose assigned policy has not been
    projected yet: deciding now would wrongly say ``no_policy``.
    """

    view: CustomerView
    policies: dict[AccountType, EffectivePolicy | None]
    pending: frozenset[AccountType] = frozenset()


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """The first decision that imported an account."""

    account_key: str
    partner_id: str
    customer_id: uuid.UUID
    policy_id: uuid.UUID
    policy_version: int
    decision_id: uuid.UUID


class CustomerDirectory(Protocol):
    async def lookup(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CustomerRecord]:
        """Customers (with effective policies) by id; unknown or removed ones are absent."""
        ...


class LedgerTransaction(Protocol):
    async def claim(self, rows: Sequence[LedgerRow]) -> set[str]:
        """Insert rows whose key is new; return those keys (the others were imported)."""
        ...

    async def imported(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are in the ledger (read only)."""
        ...

    async def commit(self) -> None: ...


class Ledger(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[LedgerTransaction]:
        """A transaction that rolls back unless committed."""
        ...


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutMessage]) -> None:
        """Produce all messages; return only once the broker acknowledged every one."""
        ...
