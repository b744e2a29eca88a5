"""How one command ended, and the ``command.*`` result event that says so (pure).

A result's id is UUIDv5 over the command id and the outcome (or reason), as
docs/contract.md §7 has it: a re-sent result is recognisable by it.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from schemas.ids import ID_NAMESPACE
from schemas.results import (
    COMMAND_FAILED,
    COMMAND_SUCCEEDED,
    CommandFailed,
    CommandSucceeded,
    ContactInfo,
    FailureReason,
    Outcome,
    Ref,
)

DETAIL_LIMIT = 4000


@dataclass(frozen=True)
class Execution:
    """The end of a command: an outcome (success) or a reason (failure), and what it found."""

    outcome: Outcome | None = None
    reason: FailureReason | None = None
    detail: str = ""
    refs: tuple[Ref, ...] = ()
    contact: ContactInfo | None = None
    #: when it ended, if not now: a redo reporting what its first attempt reached
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.outcome is None) == (self.reason is None):
            raise ValueError("an execution has an outcome or a reason, not both")

    @classmethod
    def succeeded(
        cls,
        outcome: Outcome,
        detail: str,
        refs: tuple[Ref, ...] = (),
        contact: ContactInfo | None = None,
    ) -> "Execution":
        return cls(outcome=outcome, detail=detail, refs=refs, contact=contact)

    @classmethod
    def failed(cls, reason: FailureReason, detail: str, refs: tuple[Ref, ...] = ()) -> "Execution":
        return cls(reason=reason, detail=detail, refs=refs)

    @property
    def label(self) -> str:
        """The outcome or the reason: what the result's id is made of."""
        value = self.outcome or self.reason
        assert value is not None
        return value.value


def result_id(command_id: uuid.UUID, label: str) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"{command_id}|{label}")


@dataclass(frozen=True)
class ResultFacts:
    """What a result says besides the execution: which command, by whom, when."""

    command_id: uuid.UUID
    command_type: str
    account_key: str
    customer_id: uuid.UUID
    provider: str | None
    attempts: int
    finished_at: datetime
    extra: dict[str, str] = field(default_factory=dict)


def result_data(
    execution: Execution, facts: ResultFacts
) -> tuple[str, uuid.UUID, CommandSucceeded | CommandFailed]:
    """(event type, event id, data) of the result of ``execution``."""
    common = {
        "command_id": facts.command_id,
        "command_type": facts.command_type,
        "account_key": facts.account_key,
        "customer_id": facts.customer_id,
        "provider": facts.provider,
        "refs": list(execution.refs),
        "contact": execution.contact,
        "detail": execution.detail[:DETAIL_LIMIT],
        "attempts": max(1, facts.attempts),
        "finished_at": execution.finished_at or facts.finished_at,
    }
    rid = result_id(facts.command_id, execution.label)
    if execution.outcome is not None:
        return COMMAND_SUCCEEDED, rid, CommandSucceeded(outcome=execution.outcome, **common)
    assert execution.reason is not None
    return COMMAND_FAILED, rid, CommandFailed(reason=execution.reason, **common)
