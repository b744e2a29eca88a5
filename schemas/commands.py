"""Commands the import worker sends to the downstream handlers.

Each command type is a small model with the topic (``CHANNEL``, a field of
:class:`schemas.topics.TopicNames`) it travels on. Every command carries the
account it is about and the policy (id and version) that decided it.
"""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from schemas.base import ContractModel, Email, ShortText
from schemas.discovery import DiscoveredAccount
from schemas.enums import DocumentationProvider, PsaProvider


class CommandAccount(DiscoveredAccount):
    """The discovered account, with its key."""

    key: str = Field(
        min_length=1,
        max_length=1024,
        description="<partner_id>:<customer_id>:<directory>:<external_id>",
    )


class Command(ContractModel):
    """Fields common to every command."""

    TYPE: ClassVar[str]
    CHANNEL: ClassVar[str]

    account: CommandAccount
    policy_id: uuid.UUID
    policy_version: int = Field(ge=1)


class PsaContactLink(Command):
    """Link the account to its contact in the PSA, creating it if allowed."""

    TYPE: ClassVar[str] = "psa.contact.link"
    CHANNEL: ClassVar[str] = "commands_psa"

    provider: PsaProvider
    company_id: ShortText
    create_if_missing: bool


class DocumentationPasswordLink(Command):
    """Match (or create) the account's password entry in IT Glue / Hudu."""

    TYPE: ClassVar[str] = "documentation.password.link"
    CHANNEL: ClassVar[str] = "commands_documentation"

    provider: DocumentationProvider
    organization_id: ShortText
    create_if_missing: bool
    sync_back: Literal[True] = True


class VaultPasswordStore(Command):
    """Store an administrator's password in the vault."""

    TYPE: ClassVar[str] = "vault.password.store"
    CHANNEL: ClassVar[str] = "commands_vault"


class RotationEnroll(Command):
    """Enrol an administrator account in password rotation."""

    TYPE: ClassVar[str] = "rotation.enroll"
    CHANNEL: ClassVar[str] = "commands_rotation"


class WelcomeEmailSend(Command):
    """Send the welcome email; with no ``email`` the handler resolves it from the PSA."""

    TYPE: ClassVar[str] = "notification.welcome_email.send"
    CHANNEL: ClassVar[str] = "commands_notification"

    email: Email | None


class SelfServiceResetEnable(Command):
    """Enable self-service password reset for the account."""

    TYPE: ClassVar[str] = "identity.self_service_reset.enable"
    CHANNEL: ClassVar[str] = "commands_identity"


class M365PasswordSyncEnable(Command):
    """Sync the AD / local password of the account to Microsoft 365."""

    TYPE: ClassVar[str] = "identity.m365_password_sync.enable"
    CHANNEL: ClassVar[str] = "commands_identity"


COMMAND_MODELS: tuple[type[Command], ...] = (
    PsaContactLink,
    DocumentationPasswordLink,
    VaultPasswordStore,
    RotationEnroll,
    WelcomeEmailSend,
    SelfServiceResetEnable,
    M365PasswordSyncEnable,
)
