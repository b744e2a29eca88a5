"""``command.results``: how each command ended, as the handlers report it (docs/contract.md §7).

A command ends in ``command.succeeded`` (with an ``outcome``) or
``command.failed`` (with a ``reason``). A result's id is UUIDv5 over the
command id and the outcome (or reason), so a re-sent result is recognisable;
a ``deferred`` documentation link reports again, ``created``, when its entry
is made.
"""

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas.base import ContractModel, Email, ShortText
from schemas.discovery import Phone

COMMAND_SUCCEEDED = "command.succeeded"
COMMAND_FAILED = "command.failed"


class Outcome(StrEnum):
    MATCHED = "matched"
    CREATED = "created"
    UPDATED = "updated"
    NOT_FOUND = "not_found"
    DEFERRED = "deferred"
    SENT = "sent"
    STORED = "stored"
    ENROLLED = "enrolled"
    SKIPPED = "skipped"


class FailureReason(StrEnum):
    AMBIGUOUS_MATCH = "ambiguous_match"
    INTEGRATION_MISSING = "integration_missing"
    INTEGRATION_AUTH = "integration_auth"
    VENDOR_REJECTED = "vendor_rejected"
    NO_EMAIL = "no_email"
    TIMEOUT = "timeout"


class Ref(ContractModel):
    """A record in another system: the contact linked, the password entry, a candidate."""

    system: ShortText = Field(description="The provider, e.g. `connectwise`.")
    kind: ShortText = Field(description="e.g. `contact`, `password`.")
    id: ShortText
    url: str | None = Field(default=None, max_length=2048)


class ContactInfo(ContractModel):
    """What the linked PSA contact says of the account's person."""

    email: Email | None = None
    phone: Phone | None = None


class CommandResult(ContractModel):
    """Fields of both result types."""

    command_id: uuid.UUID
    command_type: ShortText
    account_key: str = Field(min_length=1, max_length=1024)
    customer_id: uuid.UUID
    provider: ShortText | None = Field(
        default=None, description="The integration that executed it (none for the vault)."
    )
    refs: list[Ref] = Field(default_factory=list)
    contact: ContactInfo | None = Field(default=None, description="PSA links only.")
    detail: str = Field(default="", max_length=4000, description="Human-readable.")
    attempts: int = Field(ge=1)
    finished_at: AwareDatetime


class CommandSucceeded(CommandResult):
    """The command did what it asked (or found nothing to do, as allowed)."""

    outcome: Outcome


class CommandFailed(CommandResult):
    """The command could not be carried out; ``reason`` says why."""

    reason: FailureReason
