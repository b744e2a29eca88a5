"""Import options of a policy, one model per account type.

``create_if_missing`` without ``match`` is meaningless (one cannot create what
one never looks for), so the models reject it; the HTTP API answers 422.
"""

from typing import Self

from pydantic import Field, model_validator

from schemas.base import ContractModel
from schemas.enums import AccountType


class MatchOrCreate(ContractModel):
    """Find the account's counterpart in an external system, optionally creating it."""

    match: bool = False
    create_if_missing: bool = False

    @model_validator(mode="after")
    def _create_needs_match(self) -> Self:
        if self.create_if_missing and not self.match:
            raise ValueError("create_if_missing requires match")
        return self


class EndUserOptions(ContractModel):
    """What to do with an end-user account."""

    documentation: MatchOrCreate = Field(
        default_factory=MatchOrCreate,
        description="Match (or create) the account's password entry in IT Glue / Hudu.",
    )
    psa: MatchOrCreate = Field(
        default_factory=MatchOrCreate,
        description="Link (or create) the contact in ConnectWise / Autotask / Halo.",
    )
    send_welcome_email: bool = False
    enable_self_serve_reset: bool = False
    sync_password_to_m365: bool = Field(
        default=False, description="Sync AD / local passwords to Microsoft 365."
    )


class AdministratorOptions(ContractModel):
    """What to do with an administrator account."""

    save_password_in_vault: bool = Field(
        default=False, description="Store the password in the vault when documentation is not used."
    )
    documentation: MatchOrCreate = Field(default_factory=MatchOrCreate)
    enable_password_rotation: bool = False


PolicyOptions = EndUserOptions | AdministratorOptions


def options_model_for(
    account_type: AccountType,
) -> type[EndUserOptions] | type[AdministratorOptions]:
    """The options model that belongs to ``account_type``.

    Both models share ``documentation``, so a payload alone cannot say which one
    it is; the policy's account type decides.
    """
    return EndUserOptions if account_type is AccountType.END_USER else AdministratorOptions
