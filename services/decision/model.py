"""Inputs and output of the import decision."""

import uuid

from pydantic import Field, model_validator

from schemas.base import ContractModel, PartnerId
from schemas.commands import Command, CommandAccount
from schemas.decision import DecisionNote, DecisionRecorded, Outcome
from schemas.enums import AccountType
from schemas.ids import command_id
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions
from schemas.policy import parse_options_by_account_type


class CustomerView(ContractModel):
    """What the decision needs to know of a customer.

    ``psa_company_shared`` is true when more than one customer of the partner
    maps to this customer's PSA company: contacts must then never be created,
    since the PSA cannot tell whose contact it would be.
    """

    id: uuid.UUID
    partner_id: PartnerId
    psa: PsaMapping | None = None
    documentation: DocumentationMapping | None = None
    psa_company_shared: bool = False


class EffectivePolicy(ContractModel):
    """The policy assigned to the customer for the account's type."""

    id: uuid.UUID
    version: int = Field(ge=1)
    account_type: AccountType
    options: EndUserOptions | AdministratorOptions

    @model_validator(mode="before")
    @classmethod
    def _options_for_type(cls, values: object) -> object:
        return parse_options_by_account_type(values)


class Decision(ContractModel):
    """What to do for one discovered account: the commands to send, and why not more."""

    account: CommandAccount
    outcome: Outcome
    policy_id: uuid.UUID | None
    policy_version: int | None
    commands: tuple[Command, ...]
    notes: tuple[DecisionNote, ...]

    def command_ids(self) -> list[uuid.UUID]:
        """The deterministic id of each command, in order."""
        return [command_id(self.account.key, c.TYPE) for c in self.commands]

    def record(self, command_ids: list[uuid.UUID] | None = None) -> DecisionRecorded:
        """The ``import.decision.recorded`` data (``command_ids`` if already computed)."""
        return DecisionRecorded.model_construct(
            account=self.account,
            outcome=self.outcome,
            policy_id=self.policy_id,
            policy_version=self.policy_version,
            command_ids=self.command_ids() if command_ids is None else command_ids,
            notes=list(self.notes),
        )
