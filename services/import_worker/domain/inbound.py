"""Reading ``account.discovered`` records: valid events, or why not (pure).

A record the worker cannot read is dead-lettered at once with the reason of
CONTRACT.md section 3: ``invalid_json`` (not JSON at all), ``invalid_envelope``
(not a CloudEvent of type ``account.discovered``), ``invalid_data`` (the
envelope is fine but ``data`` breaks the schema).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.discovery import ACCOUNT_DISCOVERED, DiscoveredAccount
from schemas.envelope import CloudEvent

DiscoveredEvent = CloudEvent[DiscoveredAccount]

_DETAIL_LIMIT = 1000


class Reason(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_DATA = "invalid_data"
    UNKNOWN_CUSTOMER = "unknown_customer"
    PARTNER_MISMATCH = "partner_mismatch"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record first arrived: the DLQ reports it even after retries."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed record, from ``account.discovered`` or the retry topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    attempt: int = 0
    origin: Origin | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    @property
    def first_seen(self) -> Origin:
        return self.origin or Origin(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str


def parse(value: bytes | None) -> DiscoveredEvent | Rejected:
    """The event in ``value``, or why it cannot be acted on."""
    if value is None:
        return Rejected(Reason.INVALID_JSON, "the record has no value")
    try:
        event = DiscoveredEvent.model_validate_json(value)
    except ValidationError as exc:
        return _classify(exc)
    if event.type != ACCOUNT_DISCOVERED:
        return Rejected(
            Reason.INVALID_ENVELOPE, f"type must be {ACCOUNT_DISCOVERED!r}, not {event.type!r}"
        )
    return event


def _classify(exc: ValidationError) -> Rejected:
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return Rejected(Reason.INVALID_JSON, _detail(errors))
    if all(e["loc"] and e["loc"][0] == "data" and len(e["loc"]) > 1 for e in errors):
        return Rejected(Reason.INVALID_DATA, _detail(errors))
    return Rejected(Reason.INVALID_ENVELOPE, _detail(errors))


def _detail(errors: Sequence[ErrorDetails]) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e["loc"]) or "(value)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)[:_DETAIL_LIMIT]
