"""The CloudEvents the policy service publishes, built from aggregate state."""

import uuid
from datetime import datetime

from schemas.catalog import BY_TYPE
from schemas.customer import (
    CUSTOMER_ADDED,
    CUSTOMER_REMOVED,
    CUSTOMER_UPDATED,
    CustomerRemoved,
    CustomerState,
)
from schemas.envelope import CloudEvent
from schemas.policy import (
    POLICY_CREATED,
    POLICY_DELETED,
    POLICY_UPDATED,
    PolicyDeleted,
    PolicyState,
)

SOURCE = "/policy-service"

AggregateState = PolicyState | PolicyDeleted | CustomerState | CustomerRemoved


class OutgoingEvent:
    """An event bound for a topic channel, keyed by its aggregate's id."""

    __slots__ = ("channel", "envelope", "key")

    def __init__(self, channel: str, key: str, envelope: CloudEvent[AggregateState]) -> None:
        self.channel = channel
        self.key = key
        self.envelope = envelope


def _event(event_type: str, state: AggregateState, at: datetime) -> OutgoingEvent:
    spec = BY_TYPE[event_type]
    envelope = CloudEvent[AggregateState](
        specversion="1.0",
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=event_type,
        time=at,
        subject=str(state.id),
        partnerid=state.partner_id,
        data=state,
    )
    return OutgoingEvent(spec.channel, str(state.id), envelope)


def policy_event(state: PolicyState, *, created: bool) -> OutgoingEvent:
    return _event(POLICY_CREATED if created else POLICY_UPDATED, state, state.updated_at)


def policy_deleted(state: PolicyDeleted) -> OutgoingEvent:
    return _event(POLICY_DELETED, state, state.deleted_at)


def customer_event(state: CustomerState, *, created: bool) -> OutgoingEvent:
    return _event(CUSTOMER_ADDED if created else CUSTOMER_UPDATED, state, state.updated_at)


def customer_removed(state: CustomerRemoved) -> OutgoingEvent:
    return _event(CUSTOMER_REMOVED, state, state.removed_at)
