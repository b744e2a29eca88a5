"""Talking to a running worker: a producer on its input topics, a reader of everything it
produced, the committed offsets of its group, and the harness that ties them together.

The tests talk to the worker only through the broker, its HTTP port and the
``import_worker`` tables.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from schemas.customer import CustomerRemoved, CustomerState
from schemas.discovery import DiscoveredAccount
from schemas.envelope import CloudEvent
from schemas.policy import PolicyDeleted, PolicyState
from schemas.topics import TopicNames
from services.policy_service.domain.events import (
    OutgoingEvent,
    customer_event,
    customer_removed,
    policy_deleted,
    policy_event,
)

from .events import CT_HEADER
from .worker import PARTITIONS, T, Worker, wait_until


class Bus:
    """Publishes to the worker's input topics; returns where each record landed."""

    def __init__(self, producer: AIOKafkaProducer, topics: TopicNames) -> None:
        self.producer = producer
        self.topics = topics

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> RecordMetadata:
        sent = [*CT_HEADER, *(headers or [])]
        return await self.producer.send_and_wait(topic, value, key=key, headers=sent)

    async def outgoing(self, event: OutgoingEvent) -> RecordMetadata:
        topic = self.topics.channel(event.channel)
        value = event.envelope.model_dump_json().encode()
        return await self.send(topic, event.key.encode(), value)

    async def policy(self, state: PolicyState | PolicyDeleted) -> RecordMetadata:
        if isinstance(state, PolicyDeleted):
            return await self.outgoing(policy_deleted(state))
        return await self.outgoing(policy_event(state, created=state.version == 1))

    async def customer(self, state: CustomerState | CustomerRemoved) -> RecordMetadata:
        if isinstance(state, CustomerRemoved):
            return await self.outgoing(customer_removed(state))
        return await self.outgoing(customer_event(state, created=state.version == 1))

    async def discovered(self, event: CloudEvent[DiscoveredAccount]) -> RecordMetadata:
        return await self.raw(event.data.customer_id, event.model_dump_json().encode())

    async def raw(self, customer_id: uuid.UUID | None, value: bytes) -> RecordMetadata:
        key = str(customer_id).encode() if customer_id else None
        return await self.send(self.topics.account_discovered, key, value)


# -- records out -------------------------------------------------------------------


@dataclass(frozen=True)
class Out:
    """One record the worker produced."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    @cached_property
    def envelope(self) -> dict[str, Any]:
        assert self.value is not None
        value: dict[str, Any] = json.loads(self.value)
        return value

    def header(self, name: str) -> str:
        return self.headers[name].decode()


class Reader:
    """Reads topics from their beginning and keeps every record (no consumer group)."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.records: list[Out] = []
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> "Reader":
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1_048_576,
        )
        await self.consumer.start()
        await self.consumer.topics()
        tps = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def poll(self, timeout_ms: int = 100) -> int:
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=50_000)
        n = 0
        for tp, records in batch.items():
            for r in records:
                self.records.append(
                    Out(tp.topic, tp.partition, r.offset, r.key, r.value, dict(r.headers or ()))
                )
                n += 1
        return n

    async def wait_for(
        self, select: Callable[[list[Out]], T], what: str, timeout: float = 30.0
    ) -> T:
        """Poll until ``select(records)`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = select(self.records)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await self.poll()

    async def drain(self) -> None:
        """Read until a poll brings nothing new."""
        while await self.poll(timeout_ms=300):
            pass

    def caused_by(self, event_id: str, topics: Iterable[str] | None = None) -> list[Out]:
        wanted = set(topics or self.topics)
        return [
            r
            for r in self.records
            if r.topic in wanted and (r.value or b"").startswith(b"{") and _cause(r) == event_id
        ]


def _cause(record: Out) -> str | None:
    try:
        return record.envelope.get("causationid")
    except ValueError:
        return None


class Offsets:
    """The committed offsets of a consumer group (OffsetFetch, no join)."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )

    async def start(self) -> "Offsets":
        await self.consumer.start()
        return self

    async def stop(self) -> None:
        await self.consumer.stop()

    async def committed(self, topic: str) -> dict[int, int]:
        out = {}
        for p in range(PARTITIONS):
            out[p] = await self.consumer.committed(TopicPartition(topic, p)) or 0
        return out

    async def wait_past(
        self, topic: str, landed: Iterable[RecordMetadata], timeout: float = 30
    ) -> None:
        """Until the group committed past every record in ``landed``."""
        need: dict[int, int] = {}
        for meta in landed:
            need[meta.partition] = max(need.get(meta.partition, 0), meta.offset + 1)

        async def done() -> bool:
            got = await self.committed(topic)
            return all(got[p] >= o for p, o in need.items())

        await wait_until(done, f"commits on {topic} up to {need}", timeout=timeout, every=0.1)


class Harness:
    """A running worker with a producer on its input topics and a reader of its outputs."""

    def __init__(
        self,
        worker: Worker,
        bus: Bus,
        reader: Reader,
        offsets: Offsets,
        http: aiohttp.ClientSession,
    ) -> None:
        self.worker = worker
        self.bus = bus
        self.reader = reader
        self.offsets = offsets
        self.http = http
        self.topics = worker.topics

    async def project(
        self,
        db: asyncpg.Pool,
        *states: PolicyState | PolicyDeleted | CustomerState | CustomerRemoved,
    ) -> None:
        """Publish policy/customer states and wait until the worker's tables hold them."""
        for state in states:
            if isinstance(state, PolicyState | PolicyDeleted):
                await self.bus.policy(state)
            else:
                await self.bus.customer(state)

        async def landed() -> bool:
            for state in states:
                table = (
                    "policies" if isinstance(state, PolicyState | PolicyDeleted) else "customers"
                )
                version = await db.fetchval(
                    f"SELECT version FROM import_worker.{table} WHERE id = $1", state.id
                )
                if version is None or version < state.version:
                    return False
            return True

        await wait_until(landed, "the projection of the published states")

    async def decide(
        self, event: CloudEvent[DiscoveredAccount], timeout: float = 30
    ) -> tuple[Out, list[Out]]:
        """Publish a discovery; its decision record and its commands (all of them)."""
        await self.bus.discovered(event)
        return await self.outcome(event, timeout)

    async def outcome(
        self, event: CloudEvent[DiscoveredAccount], timeout: float = 30
    ) -> tuple[Out, list[Out]]:
        """The decision record of a published discovery, and all of its commands."""
        decisions = self.topics.import_decisions
        decision = await self.reader.wait_for(
            lambda _: self.reader.caused_by(event.id, [decisions]),
            f"the decision caused by {event.id}",
            timeout,
        )
        assert len({d.envelope["id"] for d in decision}) == 1, decision
        wanted = set(decision[0].envelope["data"]["command_ids"])
        if not wanted:
            return decision[0], []
        commands = [t for t in self.reader.topics if t != decisions]

        def complete(_: list[Out]) -> list[Out] | None:
            found = self.reader.caused_by(event.id, commands)
            return found if {c.envelope["id"] for c in found} >= wanted else None

        found = await self.reader.wait_for(complete, f"the commands caused by {event.id}")
        return decision[0], found
