"""``agent.requests``: what the handlers ask of the discovery agents (docs/contract.md §7).

``rotation.requested``: an enrolled account's password is due for rotation;
the agent that manages it rotates the password and answers with an
``account.password.changed`` (``changed_by: rotation``). The event's id is
UUIDv5 over the account key and the due date, so a re-sent request (one left
unanswered for a day is sent again) is recognisable.
"""

import uuid

from pydantic import AwareDatetime, Field

from schemas.base import ContractModel

ROTATION_REQUESTED = "rotation.requested"


class RotationRequested(ContractModel):
    """Rotate this account's password."""

    account_key: str = Field(min_length=1, max_length=1024)
    customer_id: uuid.UUID
    due_at: AwareDatetime = Field(description="When the rotation fell due.")
    interval_days: int = Field(ge=1, description="The rotation interval it was enrolled with.")
