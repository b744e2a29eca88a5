"""The publisher follows the broker's partition count: after partitions are added (and
the client's metadata refreshed) a key goes where every other Kafka client sends it."""

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.import_worker.adapters.publisher import KafkaPublisher
from services.import_worker.service_layer.ports import OutMessage

pytestmark = pytest.mark.unit


class _Batch:
    def __init__(self) -> None:
        self.records: list[bytes | None] = []

    def append(self, *, key: bytes | None, value: bytes | None, **_: Any) -> object:
        self.records.append(key)
        return object()

    def close(self) -> None:
        pass


class _Cluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.partitions)) if self.partitions else None


class _Client:
    def __init__(self, cluster: _Cluster) -> None:
        self.cluster = cluster


class _Producer:
    """What the publisher uses of ``AIOKafkaProducer``; records where batches went."""

    def __init__(self, partitions: int) -> None:
        self.client = _Client(_Cluster(partitions))
        self.sent: list[tuple[str, int, list[bytes | None]]] = []
        self.metadata_requests = 0

    async def partitions_for(self, topic: str) -> set[int]:
        self.metadata_requests += 1
        self.client.cluster.partitions = self.client.cluster.partitions or 3
        return set(range(self.client.cluster.partitions))

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(
        self, batch: _Batch, topic: str, *, partition: int
    ) -> "asyncio.Future[Any]":
        self.sent.append((topic, partition, batch.records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _expected(key: bytes, count: int) -> int:
    partitions = list(range(count))
    return int(DefaultPartitioner()(key, partitions, partitions))


async def test_a_key_moves_with_the_partition_count_of_the_current_metadata() -> None:
    producer = _Producer(partitions=4)
    publisher = KafkaPublisher(producer)  # type: ignore[arg-type]
    keys = [f"acme:{i}:active_directory:ext-{i}".encode() for i in range(40)]

    await publisher.publish([OutMessage("commands.psa", k, b"{}") for k in keys])
    before = {k: p for _, p, ks in producer.sent for k in ks if k is not None}
    assert before == {k: _expected(k, 4) for k in keys}

    producer.client.cluster.partitions = 12  # partitions added; metadata refreshed
    producer.sent.clear()
    await publisher.publish([OutMessage("commands.psa", k, b"{}") for k in keys])
    after = {k: p for _, p, ks in producer.sent for k in ks if k is not None}
    assert after == {k: _expected(k, 12) for k in keys}
    assert after != before


async def test_a_topic_missing_from_the_metadata_is_asked_for() -> None:
    producer = _Producer(partitions=0)
    publisher = KafkaPublisher(producer)  # type: ignore[arg-type]
    await publisher.publish([OutMessage("import.decisions", b"k", b"{}")])
    assert producer.metadata_requests == 1
    assert producer.sent == [("import.decisions", _expected(b"k", 3), [b"k"])]
