"""``account.discovered``: what a discovery agent reports, and the account key."""

from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.base import ContractModel, Email, ExternalId, PartnerId, ShortText, Timestamp
from schemas.enums import AccountType, Directory
from schemas.ids import CustomerId

ACCOUNT_DISCOVERED = "account.discovered"

Phone = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DiscoveredAccount(ContractModel):
    """One account found by an agent in a customer's directory."""

    customer_id: CustomerId
    account_type: AccountType
    directory: Directory
    external_id: ExternalId = Field(
        description="The directory's stable id: objectGUID, SID or Entra object id."
    )
    username: ShortText
    display_name: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None
    user_principal_name: ShortText | None = None
    agent_id: ShortText | None = None
    discovered_at: Timestamp | None = None


def account_key(partner_id: PartnerId, account: DiscoveredAccount) -> str:
    """``<partner_id>:<customer_id>:<directory>:<external_id>``: an account's identity.

    Commands and decisions are keyed (and deduplicated) by it.
    """
    return f"{partner_id}:{account.customer_id}:{account.directory.value}:{account.external_id}"
