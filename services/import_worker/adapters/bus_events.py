"""Parsing the policy service's events for the projection (pure)."""

from pydantic import BaseModel, ValidationError

from schemas.catalog import BY_TYPE
from schemas.customer import CustomerRemoved, CustomerState
from schemas.policy import PolicyDeleted, PolicyState


def parse_state(
    value: bytes | None, channel: str
) -> PolicyState | PolicyDeleted | CustomerState | CustomerRemoved | None:
    """The aggregate state carried by a policy or customer event; None if unreadable."""
    if not value:
        return None
    try:
        head = _Head.model_validate_json(value)
    except ValidationError:
        return None
    spec = BY_TYPE.get(head.type)
    if spec is None or spec.channel != channel:
        return None
    try:
        event = spec.envelope_model().model_validate_json(value)
    except ValidationError:
        return None
    data = event.data
    if isinstance(data, PolicyState | PolicyDeleted | CustomerState | CustomerRemoved):
        return data
    return None


class _Head(BaseModel):
    type: str
