"""An integration as the policy service keeps it (docs/contract.md §6)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.ids import ID_NAMESPACE
from schemas.integrations import IntegrationConfigured, Provider, integration_key

StatusState = Literal["unknown", "ok", "failing"]


@dataclass(frozen=True)
class IntegrationRecord:
    """One partner's integration with one provider; credentials only as ciphertext."""

    partner_id: str
    provider: Provider
    base_url: str
    settings: dict[str, Any]
    enabled: bool
    credential_fields: tuple[str, ...]
    credentials_ciphertext: str
    version: int
    status_state: StatusState
    status_detail: str | None
    status_checked_at: datetime | None
    updated_at: datetime

    @property
    def key(self) -> str:
        return integration_key(self.partner_id, self.provider.value)

    def configured_event(self) -> IntegrationConfigured:
        return IntegrationConfigured(
            partner_id=self.partner_id,
            provider=self.provider,
            base_url=self.base_url,
            settings=self.settings,
            enabled=self.enabled,
            version=self.version,
            credentials_ciphertext=self.credentials_ciphertext,
        )


def audit_id(partner_id: str, provider: str) -> uuid.UUID:
    """A stable id for the audit log, which names entities by UUID."""
    return uuid.uuid5(ID_NAMESPACE, f"integration|{integration_key(partner_id, provider)}")
