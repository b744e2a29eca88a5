"""The outbox relay never sends into a topic the broker no longer has (found by
``make chaos``, scenario 4).

A broker that lost its topics (Tansu after a restart) acknowledges writes to them and
drops them. The relay only checked after sending: rows fetched while the broker was
down were sent the moment it came back, partly dropped, and re-sent behind newer
versions of the same key, so the topic lost its per-key order. It now checks before
sending as well, and sends nothing until the topics are back.
"""

import json
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.policy_service.adapters import relay as relay_module
from services.policy_service.adapters.relay import OutboxRelay, RelayConfig, RelayMetrics

pytestmark = pytest.mark.unit


class Cluster:
    def __init__(self, topics: set[str]) -> None:
        self._topics = topics

    def topics(self) -> set[str]:
        return self._topics


class Client:
    def __init__(self, topics: set[str]) -> None:
        self.cluster = Cluster(topics)

    async def force_metadata_update(self) -> bool:
        return True


class Producer:
    def __init__(self, topics: set[str]) -> None:
        self.client = Client(topics)
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, *, value: bytes, key: bytes, headers: Any) -> Any:
        self.sent.append((topic, value))
        raise AssertionError("sent into a topic the broker does not have")


class Connection:
    def __init__(self) -> None:
        self.executed: list[str] = []

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return [
            {"id": 1, "topic": "policy.events", "key": "p1", "value": b"{}", "age": 0.1,
             "headers": json.dumps({"content-type": "application/cloudevents+json"})},
        ]  # fmt: skip

    async def execute(self, query: str, *args: Any) -> str:
        self.executed.append(query)
        return "UPDATE 1"

    def transaction(self) -> "Transaction":
        return Transaction(self)


class Transaction:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> None:
        self.conn.executed.append("BEGIN")

    async def __aexit__(self, *exc: object) -> None:
        self.conn.executed.append("ROLLBACK" if exc[0] else "COMMIT")


async def test_nothing_is_sent_while_the_broker_lacks_the_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[list[str]] = []

    async def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> list[str]:
        created.append(list(topics))
        return list(topics)

    monkeypatch.setattr(relay_module, "ensure_topics", ensure_topics)
    relay = OutboxRelay(
        RelayConfig(dsn="unused", bootstrap_servers="unused"), RelayMetrics(CollectorRegistry())
    )
    producer, conn = Producer(topics={"customer.events"}), Connection()
    with pytest.raises(RuntimeError, match="lost topics"):
        await relay.publish_once(conn, producer)  # type: ignore[arg-type]
    assert producer.sent == []
    assert not any("SET published_at" in q for q in conn.executed)  # still unpublished
    assert conn.executed[-1] == "ROLLBACK"
    assert created == [["policy.events"]]  # the row's own topic, made for the next round


class ReadOnlyConnection(Connection):
    """A server that refuses writes: the lock taken before sending fails."""

    async def execute(self, query: str, *args: Any) -> str:
        if "FOR UPDATE" in query:
            raise asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction")
        return await super().execute(query, *args)


async def test_nothing_is_sent_while_the_database_refuses_writes() -> None:
    """Sending first and failing to mark would re-send the batch at every retry."""
    relay = OutboxRelay(
        RelayConfig(dsn="unused", bootstrap_servers="unused"), RelayMetrics(CollectorRegistry())
    )
    producer, conn = Producer(topics={"policy.events"}), ReadOnlyConnection()
    with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
        await relay.publish_once(conn, producer)  # type: ignore[arg-type]
    assert producer.sent == []
