"""The id of a rotation request (pure).

The request's id is UUIDv5 over the account key and the due date (docs/contract.md
§7), so a request left unanswered and sent again is recognisable as the same one,
and two replicas that both thought it due would still send one request.
"""

import uuid
from datetime import UTC, datetime

from schemas.agent_requests import ROTATION_REQUESTED
from schemas.ids import ID_NAMESPACE


def rotation_request_id(account_key: str, due: datetime) -> uuid.UUID:
    """``UUIDv5(namespace, "<account key>|rotation.requested|<due date, YYYY-MM-DD>")``,
    the date in UTC."""
    day = due.astimezone(UTC).date()
    return uuid.uuid5(ID_NAMESPACE, f"{account_key}|{ROTATION_REQUESTED}|{day.isoformat()}")
