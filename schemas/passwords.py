"""``account.passwords``: an account's password changed (docs/contract.md §7).

Sent by the discovery agents (after a rotation they were asked for, or when
they see a change) and by the platform. The password travels only as
ciphertext: AES-256-GCM under ``SECRETS_KEY``, base64 of a 12-byte nonce then
ciphertext and tag, over the password's UTF-8 bytes, with the account key as
associated data.
"""

import uuid
from enum import StrEnum

from pydantic import Field

from schemas.base import ContractModel, Timestamp

PASSWORD_CHANGED = "account.password.changed"


class ChangedBy(StrEnum):
    ROTATION = "rotation"
    SELF_SERVICE = "self_service"
    TECHNICIAN = "technician"
    AGENT = "agent"


class PasswordChanged(ContractModel):
    """A new password for one account."""

    account_key: str = Field(min_length=1, max_length=1024)
    customer_id: uuid.UUID
    changed_at: Timestamp
    changed_by: ChangedBy
    password_ciphertext: str = Field(min_length=1, max_length=8192)
