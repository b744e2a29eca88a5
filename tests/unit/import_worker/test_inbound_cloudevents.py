"""Reading ``account.discovered`` as the CloudEvents JSON format and Kafka binding say
(docs/contract.md §2): null attributes are absent, unknown fields inside ``data`` are
ignored, the binary content mode is read as well as the structured one, and what the
official CloudEvents SDK makes, in either mode, is decided."""

import json
import uuid
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from services.import_worker.domain.inbound import InRecord, Reason, Rejected, parse
from services.infra.rejections import DETAIL_HEADER_BYTES, utf8_cut

from .fakes import FakeDirectory, FakePublisher
from .support import (
    ALL_END_USER,
    DISCOVERED,
    END_USER,
    RETRY_TOPIC,
    customer,
    customer_id,
    discovered,
    headers,
    make_engine,
    record,
)
from .support import policy as make_policy

pytestmark = pytest.mark.unit

DLQ = "account.discovered.dlq"


def _engine(*known: str) -> tuple[Any, FakePublisher, FakeDirectory]:
    publisher = FakePublisher()
    directory = FakeDirectory(
        *(customer(name, end_user=make_policy(END_USER, **ALL_END_USER)) for name in known)
    )
    return make_engine(directory, publisher=publisher), publisher, directory


def _binary(event: dict[str, Any]) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """``event`` in binary content mode, as the Kafka binding lays it out."""
    attrs = {k: v for k, v in event.items() if k not in ("data", "datacontenttype")}
    hdrs = [(f"ce_{k}", str(v).encode()) for k, v in attrs.items()]
    hdrs.append(("content-type", event.get("datacontenttype", "application/json").encode()))
    return json.dumps(event["data"]).encode(), tuple(hdrs)


def _sdk_event(name: str = "c1", **data: Any) -> SdkEvent:
    return SdkEvent(
        attributes={
            "type": DISCOVERED,
            "source": "/agents/sdk",
            "partnerid": "acme-msp",
            "datacontenttype": "application/json",
        },
        data={
            "customer_id": str(customer_id(name)),
            "account_type": "end_user",
            "directory": "active_directory",
            "external_id": f"sdk-{uuid.uuid4()}",
            "username": "sdk.user",
            **data,
        },
    )


# -------------------------------------------------------------------- null is absent


@pytest.mark.parametrize("attribute", ["subject", "time", "correlationid", "agentversion"])
def test_a_null_attribute_counts_as_absent(attribute: str) -> None:
    event = parse(record(discovered("c1", **{attribute: None})).value)
    assert not isinstance(event, Rejected), event
    assert attribute not in (event.model_extra or {})


@pytest.mark.parametrize("attribute", ["id", "source", "type", "partnerid", "data"])
def test_a_null_required_attribute_is_missing(attribute: str) -> None:
    event = discovered("c1")
    event[attribute] = None
    rejected = parse(record(event).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_ENVELOPE
    assert f"{attribute}: Field required" in rejected.detail


def test_a_null_required_data_field_is_still_invalid_data() -> None:
    event = discovered("c1")
    event["data"]["username"] = None
    rejected = parse(record(event).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_DATA


# ---------------------------------------------------------------- tolerant reader


async def test_an_unknown_field_inside_data_is_ignored_and_the_account_decided() -> None:
    engine, publisher, _ = _engine("c1")
    event = discovered("c1")
    event["data"]["department"] = "Sales"  # a newer agent's field
    event["data"]["manager"] = {"name": "Ada"}

    result = await engine.process([record(event)])

    assert result.decided == {"imported": 1}
    assert publisher.on_topic(DLQ) == []
    for message in publisher.sent:
        assert b"department" not in (message.value or b"")  # producers emit contract fields


def test_known_fields_keep_their_strict_types() -> None:
    event = discovered("c1")
    event["data"]["department"] = "Sales"
    event["data"]["account_type"] = "boss"
    rejected = parse(record(event).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_DATA
    assert "account_type" in rejected.detail
    assert "department" not in rejected.detail


def test_unknown_extension_attributes_are_kept() -> None:
    event = parse(record(discovered("c1", traceparent="00-abc-def-01")).value)
    assert not isinstance(event, Rejected)
    assert (event.model_extra or {})["traceparent"] == "00-abc-def-01"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_any_json_data_content_type_is_read(content_type: str) -> None:
    assert not isinstance(
        parse(record(discovered("c1", datacontenttype=content_type)).value), Rejected
    )


def test_a_non_json_data_content_type_is_an_invalid_envelope() -> None:
    rejected = parse(record(discovered("c1", datacontenttype="text/plain")).value)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is Reason.INVALID_ENVELOPE


# ------------------------------------------------------------------- binary mode


def test_binary_mode_is_read_like_structured_mode() -> None:
    structured = discovered("c1", correlationid="corr-1")
    value, hdrs = _binary(structured)
    event = parse(value, hdrs)
    assert not isinstance(event, Rejected), event
    assert event.id == structured["id"]
    assert event.partnerid == structured["partnerid"]
    assert (event.model_extra or {})["correlationid"] == "corr-1"
    assert str(event.data.customer_id) == structured["data"]["customer_id"]


def test_structured_mode_wins_when_the_content_type_says_so() -> None:
    event = discovered("c1")
    value = json.dumps(event).encode()
    hdrs = (("content-type", b"application/cloudevents+json"), ("ce_specversion", b"1.0"))
    assert not isinstance(parse(value, hdrs), Rejected)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda v, h: (b"{not json", h), Reason.INVALID_JSON),
        (lambda v, h: (None, h), Reason.INVALID_ENVELOPE),
        (lambda v, h: (v, (*h[:-1], ("content-type", b"text/csv"))), Reason.INVALID_ENVELOPE),
        (lambda v, h: (v, (("ce_id", b"\xff\xfe"), *h)), Reason.INVALID_ENVELOPE),
        (lambda v, h: (v, tuple(x for x in h if x[0] != "ce_partnerid")), Reason.INVALID_ENVELOPE),
        (lambda v, h: (b'{"customer_id": "nope"}', h), Reason.INVALID_DATA),
    ],
    ids=["not-json", "no-data", "not-json-type", "header-not-utf8", "no-partner", "bad-data"],
)
def test_bad_binary_mode_records_get_the_reason_of_structured_ones(
    change: Any, reason: Reason
) -> None:
    value, hdrs = change(*_binary(discovered("c1")))
    rejected = parse(value, hdrs)
    assert isinstance(rejected, Rejected)
    assert rejected.reason is reason


async def test_a_binary_mode_discovery_keeps_its_headers_through_retries_and_the_dlq() -> None:
    engine, publisher, directory = _engine()
    value, hdrs = _binary(discovered("late"))
    first = InRecord(DISCOVERED, 0, 7, b"k", value, headers=hdrs)

    await engine.process([first])
    (retry,) = publisher.on_topic(RETRY_TOPIC)
    assert set(hdrs) <= set(retry.headers)

    directory.add(customer("late", end_user=make_policy(END_USER, **ALL_END_USER)))
    again = InRecord(
        RETRY_TOPIC, 0, 0, retry.key, retry.value, attempt=1, headers=tuple(retry.headers)
    )
    result = await engine.process([again])
    assert result.decided == {"imported": 1}

    bad = InRecord(DISCOVERED, 0, 8, b"k", b"{oops", headers=hdrs)
    await engine.process([bad])
    (dead,) = publisher.on_topic(DLQ)
    assert dead.value == b"{oops"
    assert set(hdrs) <= set(dead.headers)
    assert headers(dead)["x-error-reason"] == "invalid_json"


# ---------------------------------------------------------- the official SDK


@pytest.mark.parametrize("mode", [to_structured, to_binary], ids=["structured", "binary"])
async def test_events_made_by_the_cloudevents_sdk_are_decided(mode: Any) -> None:
    engine, publisher, _ = _engine("c1")
    message = mode(_sdk_event("c1", department="Sales"), JSONFormat())
    hdrs = tuple(message.headers.items())

    result = await engine.process([InRecord(DISCOVERED, 0, 0, b"k", message.value, headers=hdrs)])

    assert result.decided == {"imported": 1}, publisher.on_topic(DLQ)
    assert publisher.on_topic(DLQ) == []


# ------------------------------------------------------------ x-error-detail


def test_the_error_detail_is_cut_on_a_character_boundary() -> None:
    text = "é" * 1500  # 3000 bytes of two-byte characters
    cut = utf8_cut(text, DETAIL_HEADER_BYTES)
    assert len(cut) <= DETAIL_HEADER_BYTES
    assert cut.decode("utf-8") == "é" * 1000
    three = utf8_cut("€" * 1000, DETAIL_HEADER_BYTES)  # three bytes each: 2000 is not a boundary
    assert three.decode("utf-8") == "€" * 666
    assert utf8_cut("short", DETAIL_HEADER_BYTES) == b"short"
    assert utf8_cut("\ud800x", 10) == b"?x"


async def test_a_dead_letter_detail_with_long_non_ascii_text_stays_valid_utf8() -> None:
    engine, publisher, _ = _engine("c1")
    failure = ValueError("€" * 1000)  # the message of a processing failure is unbounded
    await engine.reject(record(discovered("c1")), failure)
    (dead,) = publisher.on_topic(DLQ)
    detail = dict(dead.headers)["x-error-detail"]
    assert 1990 < len(detail) <= DETAIL_HEADER_BYTES
    assert detail.decode("utf-8").startswith("processing failed: ValueError: €€€")
