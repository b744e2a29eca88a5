"""The CloudEvents 1.0 envelope (structured JSON mode) every message travels in."""

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from schemas.base import PartnerId, Timestamp

CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"

DataT = TypeVar("DataT", bound=BaseModel)

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Source = Annotated[str, StringConstraints(min_length=1, max_length=512)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
# application/json, or any other JSON type (+json), with optional parameters.
JsonMediaType = Annotated[
    str,
    StringConstraints(max_length=128, pattern=r"^application/([A-Za-z0-9.+-]+\+)?json\s*(;.*)?$"),
]


def _null_is_absent(values: Any) -> Any:
    """CloudEvents JSON format: an attribute whose value is ``null`` is absent."""
    if isinstance(values, dict) and None in values.values():
        return {k: v for k, v in values.items() if v is not None}
    return values


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 envelope with the contract's ``partnerid`` extension.

    This is the envelope this system produces: ``time`` and ``subject`` are
    always set. Unknown extension attributes are kept and ignored, as the
    CloudEvents spec asks of consumers, and so are unknown fields inside
    ``data`` (see :class:`~schemas.base.ContractModel`). An attribute given
    as ``null`` counts as absent.
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

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, values: Any) -> Any:
        return _null_is_absent(values)


class InboundEvent(CloudEvent[DataT], Generic[DataT]):
    """An envelope made outside this system (discovery agents, the official SDKs).

    ``time`` and ``subject`` are optional, as in CloudEvents itself, and
    ``datacontenttype`` may be any JSON media type (``application/json;
    charset=utf-8``, ``application/cloudevents+json``'s data is JSON too).
    """

    time: Timestamp | None = None  # type: ignore[assignment]
    subject: Subject | None = None  # type: ignore[assignment]
    datacontenttype: JsonMediaType = "application/json"  # type: ignore[assignment]


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
    "InboundEvent",
    "utc_now",
]
