"""The CloudEvents 1.0 envelope (structured JSON mode) every message travels in."""

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas.base import PartnerId, Timestamp

CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"

DataT = TypeVar("DataT", bound=BaseModel)

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Source = Annotated[str, StringConstraints(min_length=1, max_length=512)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 envelope with the contract's ``partnerid`` extension.

    Unknown extension attributes are kept, as the CloudEvents spec asks of
    consumers; the ``data`` payload itself is closed (see each data model).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"]
    id: EventId
    source: Source
    type: EventType
    time: Timestamp
    subject: Subject
    datacontenttype: Literal["application/json"] = "application/json"
    partnerid: PartnerId
    data: DataT


class CausedEvent(CloudEvent[DataT], Generic[DataT]):
    """An event produced in reaction to another: commands and decisions.

    ``causationid`` is the id of the event that caused it; ``correlationid``
    ties together everything that stems from one original event.
    """

    causationid: EventId
    correlationid: EventId


def utc_now() -> datetime:
    """The current time, timezone-aware (CloudEvents ``time`` is RFC 3339)."""
    return datetime.now(UTC)


__all__ = [
    "CONTENT_TYPE",
    "DATA_CONTENT_TYPE",
    "CausedEvent",
    "CloudEvent",
    "EventId",
    "utc_now",
]
