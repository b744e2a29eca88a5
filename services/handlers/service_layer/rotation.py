"""Asking the discovery agents to rotate the passwords that are due (docs/contract.md §7).

Every replica runs :func:`request_due` now and then. The due rows are locked for the
transaction (``FOR UPDATE SKIP LOCKED``): two replicas never take the same one. A
request is published, acknowledged, then marked sent in that transaction; a crash in
between sends it again, with the same id. One left unanswered (no
``account.password.changed`` moved the schedule) for ``resend_after`` is sent again,
with the same id, and counted: an agent that never answers shows on a dashboard.
"""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from schemas.agent_requests import ROTATION_REQUESTED, RotationRequested
from schemas.envelope import utc_now
from services.handlers.adapters.enrolments import EnrolmentStore, Rotation
from services.handlers.domain.rotation import rotation_request_id

#: (event id, envelope JSON bytes, key) to ``agent.requests``.
PublishRequest = Callable[[uuid.UUID, bytes, str], Awaitable[None]]


def request_envelope(rotation: Rotation, request_id: uuid.UUID, source: str) -> bytes:
    data = RotationRequested(
        account_key=rotation.account_key,
        customer_id=rotation.customer_id,
        due_at=rotation.next_due,
        interval_days=rotation.interval_days,
    )
    envelope = {
        "specversion": "1.0",
        "id": str(request_id),
        "source": source,
        "type": ROTATION_REQUESTED,
        "time": utc_now().isoformat(),
        "subject": rotation.account_key,
        "datacontenttype": "application/json",
        "partnerid": rotation.partner_id,
        "data": data.model_dump(mode="json"),
    }
    return json.dumps(envelope).encode()


async def request_due(
    enrolments: EnrolmentStore,
    publish: PublishRequest,
    *,
    source: str,
    resend_after: timedelta = timedelta(hours=24),
    limit: int = 200,
    on_request: Callable[[bool], None] = lambda resent: None,
) -> int:
    """Request the due rotations (at most ``limit``); how many were requested."""
    async with enrolments.due_rotations(resend_after, limit) as due:
        for rotation in due.rotations:
            request_id = rotation_request_id(rotation.account_key, rotation.next_due)
            await publish(
                request_id, request_envelope(rotation, request_id, source), rotation.account_key
            )
            await due.requested(rotation.account_key, request_id)
            on_request(rotation.request_id == request_id)
    return len(due.rotations)
