"""``customer.events``: the full state of a customer after every change."""

import uuid

from pydantic import AwareDatetime, Field

from schemas.base import ContractModel, Name, PartnerId
from schemas.mappings import DocumentationMapping, PsaMapping

CUSTOMER_ADDED = "customer.added"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_REMOVED = "customer.removed"


class PolicyAssignment(ContractModel):
    """The policy assigned to a customer for each account type (or none)."""

    end_user: uuid.UUID | None = None
    administrator: uuid.UUID | None = None


class CustomerState(ContractModel):
    """A customer as it stands, including its policy per account type."""

    id: uuid.UUID
    partner_id: PartnerId
    name: Name
    psa: PsaMapping | None = None
    documentation: DocumentationMapping | None = None
    policy_ids: PolicyAssignment
    version: int = Field(ge=1, description="Grows by one with every change.")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    changed_by: str = Field(description="The `sub` of the user who made this change.")


class CustomerRemoved(ContractModel):
    """The last word on a removed customer: its id and final version."""

    id: uuid.UUID
    partner_id: PartnerId
    version: int = Field(ge=1)
    removed_at: AwareDatetime
    changed_by: str
