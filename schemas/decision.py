"""``import.decision.recorded``: what the worker decided for an account, and why."""

import uuid
from enum import StrEnum

from pydantic import Field

from schemas.base import ContractModel
from schemas.commands import CommandAccount

DECISION_RECORDED = "import.decision.recorded"


class Outcome(StrEnum):
    IMPORTED = "imported"
    NO_POLICY = "no_policy"


class NoteReason(StrEnum):
    """Why an option that was on was not acted upon (or acted upon differently)."""

    NO_DOCUMENTATION_ORGANIZATION = "no_documentation_organization"
    NO_PSA_COMPANY = "no_psa_company"
    SHARED_PSA_COMPANY = "shared_psa_company"
    ALREADY_IN_M365 = "already_in_m365"
    PASSWORD_IN_DOCUMENTATION = "password_in_documentation"


class DecisionNote(ContractModel):
    """One option that was on but not acted upon as configured."""

    option: str = Field(description="The option's path, e.g. `psa.create_if_missing`.")
    reason: NoteReason
    detail: str


class DecisionRecorded(ContractModel):
    """The first decision taken for an account (or a fresh ``no_policy`` one)."""

    account: CommandAccount
    outcome: Outcome
    policy_id: uuid.UUID | None
    policy_version: int | None = Field(ge=1)
    command_ids: list[uuid.UUID]
    notes: list[DecisionNote]
