"""``policy.events``: the full state of an import policy after every change."""

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from schemas.base import ContractModel, Description, Name, PartnerId
from schemas.enums import AccountType
from schemas.options import AdministratorOptions, EndUserOptions, options_model_for

POLICY_CREATED = "import_policy.created"
POLICY_UPDATED = "import_policy.updated"
POLICY_DELETED = "import_policy.deleted"


def parse_options_by_account_type(values: Any) -> Any:
    """Validate ``options`` with the model of the payload's ``account_type``.

    Used as a ``mode="before"`` validator by every model carrying both fields.
    """
    if isinstance(values, dict):
        options = values.get("options")
        try:
            account_type = AccountType(str(values.get("account_type")))
        except ValueError:
            return values
        expected = options_model_for(account_type)
        if isinstance(options, dict):
            values = {**values, "options": expected.model_validate(options)}
        elif options is not None and not isinstance(options, expected):
            raise ValueError(f"options are not {account_type.value} options")
        elif options is None and "options" not in values:
            values = {**values, "options": options_model_for(account_type)()}
    return values


def options_follow_account_type(schema: dict[str, Any]) -> None:
    """JSON Schema: ``options`` must be the options model of ``account_type``.

    pydantic renders the union as ``anyOf`` (end-user first); this pins each
    branch to its account type with ``if``/``then``, whatever the ref layout.
    """
    end_user_ref, administrator_ref = schema["properties"]["options"]["anyOf"]
    schema["allOf"] = [
        {
            "if": {"properties": {"account_type": {"const": kind}}, "required": ["account_type"]},
            "then": {"properties": {"options": ref}},
        }
        for kind, ref in (("end_user", end_user_ref), ("administrator", administrator_ref))
    ]


class PolicyState(ContractModel):
    """An import policy as it stands: one account type, options, assigned customers."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_extra=options_follow_account_type
    )

    id: uuid.UUID
    partner_id: PartnerId
    account_type: AccountType
    name: Name
    description: Description = ""
    is_default: bool
    customer_ids: list[uuid.UUID] = Field(description="Customers assigned, sorted.")
    options: EndUserOptions | AdministratorOptions
    version: int = Field(ge=1, description="Grows by one with every change.")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    changed_by: str = Field(description="The `sub` of the user who made this change.")

    @model_validator(mode="before")
    @classmethod
    def _options_for_type(cls, values: Any) -> Any:
        return parse_options_by_account_type(values)


class PolicyDeleted(ContractModel):
    """The last word on a deleted policy: its id and final version."""

    id: uuid.UUID
    partner_id: PartnerId
    account_type: AccountType
    version: int = Field(ge=1)
    deleted_at: AwareDatetime
    changed_by: str


PolicyEventType = Literal["import_policy.created", "import_policy.updated", "import_policy.deleted"]
