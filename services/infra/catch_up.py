"""The start-up gate: act on nothing until a projection has caught up.

A worker that starts on an empty (or stale) projection while ``policy.events``
and ``customer.events`` hold thousands of customers would otherwise take
their discoveries for accounts of unknown customers, retry them and finally
dead-letter them. So at start-up the worker reads the end offset of every
partition of those topics, and the hot path waits until the projection has
passed them (docs/contract.md §3); ``/readyz`` says how far it is meanwhile.
The handlers gate their commands on their projection of ``integration.events``
the same way: a command must not fail for want of an integration that is only
not projected yet.

"Passed" counts what this process projected and what the projection's
consumer group has committed: with several workers the group splits the
partitions, and a partition another worker projects (into the same tables)
counts once that worker commits past the target.

Tansu's ``ListOffsets`` answers the last batch's base offset + 1 instead of
the end; the high watermark a fetch returns is right on every broker, so the
targets are read by fetching from just before that answer.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.infra.shutdown import stop_consumer

log = logging.getLogger(__name__)


async def end_offsets(
    bootstrap: str, topics: Iterable[str], *, timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """The true end offset (high watermark) of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1_048_576,
        client_id="import-worker-catch-up",
    )
    try:
        await consumer.start()
        await consumer.topics()  # refresh the metadata
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        listed: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        result = dict(listed)
        pending = [tp for tp, end in listed.items() if end > 0]
        if not pending:
            return result
        consumer.assign(pending)
        for tp in pending:
            consumer.seek(tp, listed[tp] - 1)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None:
                    result[tp] = max(result[tp], high)
                    pending.remove(tp)
        return result
    finally:
        await stop_consumer(consumer, timeout=2.0)


class CatchUp:
    """Tracks the projection against the end offsets read at start-up."""

    def __init__(self, targets: dict[TopicPartition, int]) -> None:
        self.targets = {tp: end for tp, end in targets.items() if end > 0}
        self.reached: dict[TopicPartition, int] = {}
        self.caught_up = asyncio.Event()
        self._check()

    def projected(self, topic: str, partition: int, offset: int) -> None:
        """This process applied (or skipped as unreadable) the record at ``offset``."""
        self._advance(TopicPartition(topic, partition), offset + 1)

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The projection group committed up to these offsets (any worker's doing)."""
        for tp, offset in offsets.items():
            self._advance(tp, offset)

    def _advance(self, tp: TopicPartition, position: int) -> None:
        if position > self.reached.get(tp, 0):
            self.reached[tp] = position
            self._check()

    def _check(self) -> None:
        if not self.caught_up.is_set() and all(
            self.reached.get(tp, 0) >= end for tp, end in self.targets.items()
        ):
            self.caught_up.set()
            log.info("the projection caught up with its topics; the work it gates starts")

    def behind(self) -> list[TopicPartition]:
        return [tp for tp, end in self.targets.items() if self.reached.get(tp, 0) < end]

    def progress(self) -> str:
        """``policy.events 120/2000, customer.events 0/4000`` (records reached/target)."""
        per_topic: dict[str, list[int]] = {}
        for tp, end in sorted(self.targets.items()):
            reached, target = per_topic.setdefault(tp.topic, [0, 0])
            per_topic[tp.topic] = [reached + min(self.reached.get(tp, 0), end), target + end]
        return ", ".join(f"{t} {r}/{e}" for t, (r, e) in per_topic.items())


async def follow_commits(catch_up: CatchUp, bootstrap: str, group: str, every: float = 0.5) -> None:
    """Feed the projection group's committed offsets into ``catch_up`` until it is open.

    OffsetFetch only: this consumer never joins the group.
    """
    if catch_up.caught_up.is_set():
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        client_id="import-worker-catch-up-commits",
    )
    try:
        await consumer.start()
        while not catch_up.caught_up.is_set():
            offsets = {}
            for tp in catch_up.behind():
                with contextlib.suppress(Exception):  # an outage: asked again next round
                    offset = await consumer.committed(tp)
                    if offset is not None:
                        offsets[tp] = offset
            catch_up.committed(offsets)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(catch_up.caught_up.wait(), timeout=every)
    finally:
        await stop_consumer(consumer, timeout=2.0)
