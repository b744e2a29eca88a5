"""``integration.events``: a partner's connection to one of its tools (docs/contract.md §6).

The event carries everything the handlers need to call the tool, the
credentials only as ciphertext: AES-256-GCM under ``SECRETS_KEY``, base64 of
a 12-byte nonce followed by ciphertext and tag, with the event's key
(``<partner_id>:<provider>``) as associated data.
"""

from enum import StrEnum
from typing import Any

from pydantic import Field

from schemas.base import ContractModel, PartnerId

INTEGRATION_CONFIGURED = "integration.configured"
INTEGRATION_REMOVED = "integration.removed"


class Provider(StrEnum):
    """Every tool a partner can connect."""

    CONNECTWISE = "connectwise"
    AUTOTASK = "autotask"
    HALO = "halo"
    ITGLUE = "itglue"
    HUDU = "hudu"
    SMTP = "smtp"
    M365 = "m365"


def integration_key(partner_id: str, provider: str) -> str:
    """The key of an integration's events (and the credentials' associated data)."""
    return f"{partner_id}:{provider}"


class IntegrationConfigured(ContractModel):
    """An integration as it stands after a change."""

    partner_id: PartnerId
    provider: Provider
    base_url: str = Field(min_length=1, max_length=2048)
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool
    version: int = Field(ge=1, description="Grows by one with every change.")
    credentials_ciphertext: str = Field(
        min_length=1,
        max_length=65536,
        description="base64(nonce[12] || AES-256-GCM(credentials JSON) || tag), "
        "associated data = `<partner_id>:<provider>`.",
    )


class IntegrationRemoved(ContractModel):
    """The last word on a removed integration: its key fields and final version."""

    partner_id: PartnerId
    provider: Provider
    version: int = Field(ge=1)
