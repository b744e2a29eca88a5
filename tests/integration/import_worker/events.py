"""Builders of the events the worker consumes: policy and customer states in the policy
service's envelopes, and ``account.discovered`` events as agents send them."""

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.customer import CustomerRemoved, CustomerState, PolicyAssignment
from schemas.discovery import ACCOUNT_DISCOVERED, DiscoveredAccount
from schemas.enums import AccountType, Directory
from schemas.envelope import CONTENT_TYPE, CloudEvent, utc_now
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions
from schemas.policy import PolicyDeleted, PolicyState

CT_HEADER = [("content-type", CONTENT_TYPE.encode())]


def new_partner() -> str:
    return f"iw-{uuid.uuid4().hex[:16]}"


def end_user_options(**overrides: Any) -> EndUserOptions:
    everything = {
        "documentation": {"match": True, "create_if_missing": True},
        "psa": {"match": True, "create_if_missing": True},
        "send_welcome_email": True,
        "enable_self_serve_reset": True,
        "sync_password_to_m365": True,
    }
    return EndUserOptions.model_validate(everything | overrides)


def admin_options(**overrides: Any) -> AdministratorOptions:
    everything = {
        "save_password_in_vault": True,
        "documentation": {"match": True, "create_if_missing": False},
        "enable_password_rotation": True,
    }
    return AdministratorOptions.model_validate(everything | overrides)


def policy(
    partner_id: str,
    account_type: AccountType,
    options: EndUserOptions | AdministratorOptions,
    version: int = 1,
    policy_id: uuid.UUID | None = None,
) -> PolicyState:
    now = datetime.now(UTC)
    return PolicyState(
        id=policy_id or uuid.uuid4(),
        partner_id=partner_id,
        account_type=account_type,
        name=f"{account_type.value} {uuid.uuid4().hex[:6]}",
        is_default=False,
        customer_ids=[],
        options=options,
        version=version,
        created_at=now,
        updated_at=now,
        changed_by="tests",
    )


def customer(
    partner_id: str,
    *,
    end_user: uuid.UUID | None = None,
    administrator: uuid.UUID | None = None,
    psa: tuple[str, str] | None = None,
    documentation: tuple[str, str] | None = None,
    version: int = 1,
    customer_id: uuid.UUID | None = None,
) -> CustomerState:
    now = datetime.now(UTC)
    return CustomerState(
        id=customer_id or uuid.uuid4(),
        partner_id=partner_id,
        name=f"customer {uuid.uuid4().hex[:6]}",
        psa=PsaMapping(provider=psa[0], company_id=psa[1]) if psa else None,
        documentation=DocumentationMapping(
            provider=documentation[0], organization_id=documentation[1]
        )
        if documentation
        else None,
        policy_ids=PolicyAssignment(end_user=end_user, administrator=administrator),
        version=version,
        created_at=now,
        updated_at=now,
        changed_by="tests",
    )


def removed(state: CustomerState, version: int) -> CustomerRemoved:
    return CustomerRemoved(
        id=state.id,
        partner_id=state.partner_id,
        version=version,
        removed_at=datetime.now(UTC),
        changed_by="tests",
    )


def deleted(state: PolicyState, version: int) -> PolicyDeleted:
    return PolicyDeleted(
        id=state.id,
        partner_id=state.partner_id,
        account_type=state.account_type,
        version=version,
        deleted_at=datetime.now(UTC),
        changed_by="tests",
    )


def account(
    customer_id: uuid.UUID,
    account_type: AccountType = AccountType.END_USER,
    directory: Directory = Directory.ACTIVE_DIRECTORY,
    **extra: Any,
) -> DiscoveredAccount:
    name = f"user{uuid.uuid4().hex[:6]}"
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "account_type": account_type,
        "directory": directory,
        "external_id": str(uuid.uuid4()),
        "username": name,
        "display_name": "Jo Smith",
        "email": f"{name}@example.com",
        "agent_id": "agent-7",
        "discovered_at": utc_now(),
    }
    return DiscoveredAccount.model_validate(fields | extra)


def discovered(partner_id: str, data: DiscoveredAccount) -> CloudEvent[DiscoveredAccount]:
    return CloudEvent[DiscoveredAccount](
        specversion="1.0",
        id=str(uuid.uuid4()),
        source="/agents/agent-7",
        type=ACCOUNT_DISCOVERED,
        time=utc_now(),
        subject=str(data.customer_id),
        partnerid=partner_id,
        data=data,
    )


def key_of(partner_id: str, data: DiscoveredAccount) -> str:
    return f"{partner_id}:{data.customer_id}:{data.directory.value}:{data.external_id}"
