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
from schemas.integrations import (
    INTEGRATION_CONFIGURED,
    INTEGRATION_REMOVED,
    IntegrationConfigured,
    IntegrationRemoved,
    integration_key,
)
from schemas.policy import (
    POLICY_CREATED,
    POLICY_DELETED,
    POLICY_UPDATED,
    PolicyDeleted,
    PolicyState,
)

SOURCE = "/policy-service"

AggregateState = (
    PolicyState
    | PolicyDeleted
    | CustomerState
    | CustomerRemoved
    | IntegrationConfigured
    | IntegrationRemoved
)


class OutgoingEvent:
    """An event bound for a topic channel, keyed by its aggregate's id."""

    __slots__ = ("channel", "envelope", "key")

    def __init__(self, channel: str, key: str, envelope: CloudEvent[AggregateState]) -> None:
        self.channel = channel
        self.key = key
        self.envelope = envelope


def _event(event_type: str, state: AggregateState, at: datetime, key: str) -> OutgoingEvent:
    """The envelope of ``state``, keyed (and with subject) ``key``, its aggregate's id."""
    spec = BY_TYPE[event_type]
    envelope = CloudEvent[AggregateState](
        specversion="1.0",
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=event_type,
        time=at,
        subject=key,
        partnerid=state.partner_id,
        data=state,
    )
    return OutgoingEvent(spec.channel, key, envelope)


def policy_event(state: PolicyState, *, created: bool) -> OutgoingEvent:
    event_type = POLICY_CREATED if created else POLICY_UPDATED
    return _event(event_type, state, state.updated_at, str(state.id))


def policy_deleted(state: PolicyDeleted) -> OutgoingEvent:
    return _event(POLICY_DELETED, state, state.deleted_at, str(state.id))


def customer_event(state: CustomerState, *, created: bool) -> OutgoingEvent:
    event_type = CUSTOMER_ADDED if created else CUSTOMER_UPDATED
    return _event(event_type, state, state.updated_at, str(state.id))


def customer_removed(state: CustomerRemoved) -> OutgoingEvent:
    return _event(CUSTOMER_REMOVED, state, state.removed_at, str(state.id))


def integration_configured(state: IntegrationConfigured, at: datetime) -> OutgoingEvent:
    key = integration_key(state.partner_id, state.provider.value)
    return _event(INTEGRATION_CONFIGURED, state, at, key)


def integration_removed(state: IntegrationRemoved, at: datetime) -> OutgoingEvent:
    key = integration_key(state.partner_id, state.provider.value)
    return _event(INTEGRATION_REMOVED, state, at, key)
