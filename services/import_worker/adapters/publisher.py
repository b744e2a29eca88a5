"""Batched producing with aiokafka: one record batch per partition, then wait for acks.

Per-message ``send()`` costs a future and a task per record; building one
batch per (topic, partition) with ``create_batch``/``send_batch`` is several
times faster. Partitions are chosen by aiokafka's default (murmur2) key
partitioner, as any Kafka client would, so per-key order holds across
producers.
"""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from services.import_worker.service_layer.ports import OutMessage


class KafkaPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}

    async def _partitions_of(self, topic: str) -> list[int]:
        known = self._partitions.get(topic)
        if known is None:
            known = sorted(await self.producer.partitions_for(topic))
            self._partitions[topic] = known
        return known

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        groups: dict[tuple[str, int], list[OutMessage]] = {}
        # murmur2 is pure Python here; an account's commands share one key.
        chosen: dict[tuple[bytes, int], int] = {}
        for message in messages:
            partitions = await self._partitions_of(message.topic)
            if message.key is None:
                partition = partitions[hash(message.value) % len(partitions)]
            else:
                memo = (message.key, len(partitions))
                partition = chosen.get(memo, -1)
                if partition < 0:
                    partition = self._partitioner(message.key, partitions, partitions)
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
