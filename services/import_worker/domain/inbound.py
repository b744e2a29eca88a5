"""Reading ``account.discovered`` records: valid events, or why not (pure).

A record the worker cannot read is dead-lettered at once with the reason of
docs/contract.md §3: ``invalid_json`` (not JSON at all), ``invalid_envelope``
(not a CloudEvent of type ``account.discovered``), ``invalid_data`` (the
envelope is fine but ``data`` breaks the schema).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas.discovery import ACCOUNT_DISCOVERED, DiscoveredAccount
from schemas.envelope import InboundEvent
from services.infra.rejections import DETAIL_LIMIT, Reason, Rejected, classify

DiscoveredEvent = InboundEvent[DiscoveredAccount]

_DETAIL_LIMIT = DETAIL_LIMIT
_CE_PREFIX = "ce_"
_CONTENT_TYPE = "\x00content-type"  # a key no ce_ attribute can have


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


def parse(
    value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
) -> DiscoveredEvent | Rejected:
    """The event in a record (its value and headers), or why it cannot be acted on.

    Both content modes of the CloudEvents Kafka binding are read: structured
    (the whole envelope is the value; what this system produces) and binary
    (attributes in ``ce_*`` headers, ``data`` as the value), which the
    official SDKs also produce. A ``content-type`` header starting with
    ``application/cloudevents`` means structured mode; otherwise a
    ``ce_specversion`` header means binary mode.
    """
    binary = _binary_attributes(headers)
    if binary is not None:
        return _parse_binary(value, binary)
    if value is None:
        return Rejected(Reason.INVALID_JSON, "the record has no value")
    try:
        event = DiscoveredEvent.model_validate_json(value)
    except ValidationError as exc:
        return classify(exc)
    return _of_type(event)


def _of_type(event: DiscoveredEvent) -> DiscoveredEvent | Rejected:
    if event.type != ACCOUNT_DISCOVERED:
        return Rejected(
            Reason.INVALID_ENVELOPE, f"type must be {ACCOUNT_DISCOVERED!r}, not {event.type!r}"
        )
    return event


def _binary_attributes(headers: Sequence[tuple[str, bytes]]) -> dict[str, bytes] | None:
    """The ``ce_*`` attributes (and ``content-type``) of a binary-mode record, else None."""
    if not headers:
        return None
    found: dict[str, bytes] = {}
    for name, raw in headers:
        lowered = name.lower()
        if lowered.startswith(_CE_PREFIX):
            found.setdefault(lowered[len(_CE_PREFIX) :], raw)
        elif lowered == "content-type":
            found.setdefault(_CONTENT_TYPE, raw)
    content_type = found.get(_CONTENT_TYPE, b"").strip().lower()
    if content_type.startswith(b"application/cloudevents") or "specversion" not in found:
        return None
    return found


def _parse_binary(value: bytes | None, attributes: dict[str, bytes]) -> DiscoveredEvent | Rejected:
    envelope: dict[str, object] = {}
    for name, raw in attributes.items():
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejected(Reason.INVALID_ENVELOPE, f"header ce_{name}: not UTF-8 text")
        envelope["datacontenttype" if name == _CONTENT_TYPE else name] = text
    if value is not None:
        try:
            envelope["data"] = json.loads(value)
        except (ValueError, RecursionError) as exc:
            return Rejected(Reason.INVALID_JSON, f"data (binary mode): {exc}"[:_DETAIL_LIMIT])
    try:
        event = DiscoveredEvent.model_validate(envelope)
    except ValidationError as exc:
        return classify(exc)
    return _of_type(event)


__all__ = ["DiscoveredEvent", "InRecord", "Origin", "Reason", "Rejected", "parse"]
