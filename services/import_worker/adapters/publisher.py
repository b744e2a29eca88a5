"""Batched producing with aiokafka: one record batch per partition, then wait for acks.

Per-message ``send()`` costs a future and a task per record; building one
batch per (topic, partition) with ``create_batch``/``send_batch`` is several
times faster. Partitions are chosen by Kafka's default (murmur2) key
partitioner, as any Kafka client would, so per-key order holds across
producers (``services.infra.murmur2``: the same hash as aiokafka's, twice as fast).
"""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from services.import_worker.service_layer.ports import OutMessage
from services.infra.murmur2 import partition_of


class KafkaPublisher:
    """Produces batches; the partition count of a topic is read from the producer's
    current cluster metadata on every publish, so when partitions are added (and
    the client's metadata refreshes) this worker agrees with every other Kafka
    client on which partition a key belongs to."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def _partitions_of(self, topic: str) -> list[int]:
        known = self.producer.client.cluster.partitions_for_topic(topic)
        if not known:  # not in the metadata yet: ask the broker (and wait for it)
            known = await self.producer.partitions_for(topic)
        return sorted(known)

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        groups: dict[tuple[str, int], list[OutMessage]] = {}
        # murmur2 is pure Python; an account's commands share one key.
        chosen: dict[tuple[bytes, int], int] = {}
        counts: dict[str, list[int]] = {}
        for message in messages:
            partitions = counts.get(message.topic)
            if partitions is None:
                partitions = counts[message.topic] = await self._partitions_of(message.topic)
            if message.key is None:
                partition = partitions[hash(message.value) % len(partitions)]
            else:
                memo = (message.key, len(partitions))
                partition = chosen.get(memo, -1)
                if partition < 0:
                    partition = partition_of(message.key, partitions)
                    chosen[memo] = partition
            groups.setdefault((message.topic, partition), []).append(message)

        futures: list[asyncio.Future[object]] = []
        for (topic, partition), group in groups.items():
            batch = self.producer.create_batch()
            for message in group:
                if (
                    batch.append(
                        key=message.key,
                        value=message.value,
                        timestamp=None,
                        headers=message.headers,
                    )
                    is None
                ):
                    batch.close()
                    futures.append(
                        await self.producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = self.producer.create_batch()
                    if (
                        batch.append(
                            key=message.key,
                            value=message.value,
                            timestamp=None,
                            headers=message.headers,
                        )
                        is None
                    ):
                        raise ValueError(f"a message for {topic} is larger than a batch")
            batch.close()
            futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
