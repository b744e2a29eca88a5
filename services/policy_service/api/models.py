"""Request and response bodies of the HTTP API; the OpenAPI document is built from them."""

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from schemas.base import Description, Name
from schemas.customer import PolicyAssignment
from schemas.decision import DecisionNote, Outcome
from schemas.enums import AccountType
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions, options_model_for
from schemas.policy import options_follow_account_type

# Duplicates are refused (422), so the schema says so too.
CustomerIdList = Annotated[
    list[uuid.UUID], Field(max_length=10_000, json_schema_extra={"uniqueItems": True})
]


class Body(BaseModel):
    """A request body: closed (unknown fields are a 422), immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _create_schema(schema: dict[str, Any]) -> None:
    """``options`` may be omitted (all off), as ``_default_options`` lets it be."""
    options_follow_account_type(schema)
    schema["required"] = [name for name in schema.get("required", []) if name != "options"]


class PolicyCreate(Body):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_create_schema)

    account_type: AccountType
    name: Name
    description: Description = ""
    is_default: StrictBool = False
    customer_ids: CustomerIdList = Field(default_factory=list)
    options: EndUserOptions | AdministratorOptions = Field(
        description="Options of the policy's account type; omitted ones are off."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_options(cls, values: Any) -> Any:
        if isinstance(values, dict) and "options" not in values:
            return {**values, "options": {}}
        return values

    @field_validator("options", mode="before")
    @classmethod
    def _options_for_type(cls, value: Any, info: ValidationInfo) -> Any:
        """Validate with the model of ``account_type``: errors then point into ``options``."""
        account_type = info.data.get("account_type")
        if account_type is None:  # invalid, and reported as such
            return value
        # Strict: a JSON boolean only, never "yes", 0 or "off" read as one.
        return options_model_for(account_type).model_validate(value, strict=True, extra="forbid")


_FLAG = {"type": ["boolean", "null"]}
_MATCH_OR_CREATE = {
    "type": ["object", "null"],
    "properties": {"match": _FLAG, "create_if_missing": _FLAG},
    "additionalProperties": False,
}
# The options a merge patch may name (those of the policy's account type, which the
# body cannot say: the other type's are refused with 422).
_OPTIONS_PATCH: dict[str, Any] = {
    "properties": {
        name: _MATCH_OR_CREATE if name in ("documentation", "psa") else _FLAG
        for name in sorted({*EndUserOptions.model_fields, *AdministratorOptions.model_fields})
    },
    "additionalProperties": False,
}


class PolicyPatch(Body):
    """Any field but ``account_type``; ``options`` is a JSON merge patch."""

    name: Name | None = None
    description: Description | None = None
    is_default: StrictBool | None = None
    customer_ids: CustomerIdList | None = None
    options: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the current options (RFC 7396); null removes an option.",
        json_schema_extra=lambda schema: schema.update(_OPTIONS_PATCH),
    )

    # Not part of a patch: declared (and hidden from the schema) only so that sending
    # it is reported against the field itself, with a message saying what to do.
    account_type: SkipJsonSchema[None] = Field(default=None, exclude=True)

    @field_validator("account_type", mode="before")
    @classmethod
    def _no_account_type(cls, value: Any) -> None:
        raise ValueError("account_type cannot be changed; create a new policy instead")


class CustomerIds(Body):
    customer_ids: CustomerIdList


class Policy(BaseModel):
    model_config = ConfigDict(json_schema_extra=options_follow_account_type)

    id: uuid.UUID
    account_type: AccountType
    name: str
    description: str
    is_default: bool
    customer_ids: list[uuid.UUID]
    options: EndUserOptions | AdministratorOptions
    version: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class PolicyPage(BaseModel):
    items: list[Policy]
    next_cursor: str | None


class CustomerCreate(Body):
    name: Name
    id: uuid.UUID | None = Field(default=None, description="Chosen by the caller, or generated.")
    psa: PsaMapping | None = None
    documentation: DocumentationMapping | None = None


class CustomerPatch(Body):
    """Name or mappings; ``null`` removes a mapping."""

    name: Name | None = None
    psa: PsaMapping | None = None
    documentation: DocumentationMapping | None = None


class Customer(BaseModel):
    id: uuid.UUID
    name: str
    psa: PsaMapping | None
    documentation: DocumentationMapping | None
    policy_ids: PolicyAssignment
    version: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CustomerPage(BaseModel):
    items: list[Customer]
    next_cursor: str | None


class EffectivePolicies(BaseModel):
    end_user: Policy | None
    administrator: Policy | None


class PreviewCommand(BaseModel):
    id: uuid.UUID
    type: str
    topic: str
    data: dict[str, Any]


class Preview(BaseModel):
    """The decision the worker would take; nothing is emitted."""

    outcome: Outcome
    policy_id: uuid.UUID | None
    policy_version: int | None
    commands: list[PreviewCommand]
    notes: list[DecisionNote]


class FieldError(BaseModel):
    pointer: str = Field(description="JSON Pointer to the offending field, e.g. `#/options/psa`.")
    field: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)


# -- integrations (docs/contract.md §6) ------------------------------------------------


class IntegrationPut(Body):
    """Configure or replace an integration. ``credentials`` may be left out to keep the
    ones already stored (write-only: they are never shown again)."""

    base_url: str = Field(min_length=1, max_length=2048)
    credentials: dict[str, str] | None = Field(
        default=None,
        description="The provider's credential fields (docs/contract.md §6); required the "
        "first time.",
        json_schema_extra={"maxProperties": 16},
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The provider's optional settings; unknown ones are refused.",
        json_schema_extra={"maxProperties": 16},
    )
    enabled: StrictBool = True


class IntegrationStatus(BaseModel):
    state: Literal["unknown", "ok", "failing"]
    detail: str | None
    checked_at: AwareDatetime | None


class Integration(BaseModel):
    """An integration as the API shows it: never a secret, only the credentials' names."""

    provider: str
    base_url: str
    settings: dict[str, Any]
    enabled: bool
    credentials_set: bool
    credential_fields: list[str]
    status: IntegrationStatus
    version: int
    updated_at: AwareDatetime


class IntegrationPage(BaseModel):
    items: list[Integration]
    next_cursor: str | None


# -- accounts (docs/contract.md §8) -------------------------------------------------


class AccountRef(BaseModel):
    system: str
    kind: str
    id: str
    url: str | None


class AccountCommand(BaseModel):
    """One command of the account's decision, with its latest result."""

    id: uuid.UUID
    type: str | None = Field(description="`psa.contact.link`, …; null for a command not of ours.")
    status: Literal["pending", "succeeded", "failed"]
    outcome: str | None = Field(description="On success: `matched`, `created`, …")
    reason: str | None = Field(description="On failure: `ambiguous_match`, `no_email`, …")
    provider: str | None
    refs: list[AccountRef]
    detail: str | None
    updated_at: AwareDatetime


class AccountDecision(BaseModel):
    outcome: Outcome
    policy_id: uuid.UUID | None
    policy_version: int | None
    notes: list[DecisionNote]
    decided_at: AwareDatetime


class Account(BaseModel):
    """A decided account: what the worker decided, and how each command ended."""

    key: str
    customer_id: uuid.UUID
    account_type: AccountType
    directory: str
    username: str
    display_name: str | None
    email: str | None
    status: Literal["done", "pending", "attention", "no_policy"] = Field(
        description="`attention` if a command failed, else `pending` if one has no result"
        " yet, else `done`; `no_policy` when no policy applied."
    )
    decision: AccountDecision
    commands: list[AccountCommand]


class AccountCounts(BaseModel):
    """Accounts per status under the `customer_id` and `account_type` filters."""

    done: int
    pending: int
    attention: int
    no_policy: int


class AccountPage(BaseModel):
    items: list[Account]
    next_cursor: str | None
    counts: AccountCounts
