"""A getmany() that one undecodable record batch cannot turn into lost records elsewhere.

aiokafka 0.14 decodes lazily, inside ``Fetcher.fetched_records()`` ->
``FetchResult.getall()`` -> ``PartitionRecords._unpack_records()`` ->
``DefaultRecordBatch.__iter__`` -> ``_maybe_uncompress`` -> ``_assert_has_codec``.
The error (``UnsupportedCodecError``; ``CorruptRecordException`` for a bad CRC)
escapes ``getmany()`` after the records of partitions visited earlier in the same
call were taken out of the buffer and their positions advanced: those records
are never returned (silently skipped). The failing partition's position does not
move, so every later call raises again.

Recipe: drain each assigned partition with its own ``getmany(tp, timeout_ms=0)``
(an error is then attributable to ``tp`` and nothing else is drained in that
call); wait for new data with ``getmany(max_records=1)`` (a batch that cannot be
decoded raises before anything of another partition was taken). A partition that
raises is *quarantined*: its records before the bad batch are still handed out,
then it is paused (``consumer.pause``) so the fetcher stops asking for it while
every other partition flows. ``skip()`` seeks past the bad batch (for a batch that
will never decode: a corrupt CRC, an unknown codec), after reading its offsets
from the batch header of a raw Fetch (no decompression needed).
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException, UnsupportedCodecError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

log = logging.getLogger(__name__)

try:  # a malformed compressed payload (cramjam present): not a KafkaError
    from cramjam import DecompressionError
except ImportError:  # pragma: no cover
    DecompressionError = UnsupportedCodecError  # type: ignore[misc]

UNDECODABLE = (UnsupportedCodecError, CorruptRecordException, DecompressionError)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
Batch = dict[TopicPartition, list[ConsumerRecord]]


@dataclass
class Quarantined:
    tp: TopicPartition
    bad_offset: int  # first offset of the batch that cannot be decoded
    error: str
    paused: bool = False


class IsolatingFetch:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.quarantined: dict[TopicPartition, Quarantined] = {}
        self._reported: set[TopicPartition] = set()

    def newly_quarantined(self) -> list[TopicPartition]:
        """Partitions quarantined since the last call (each is counted once)."""
        new = [tp for tp in self.quarantined if tp not in self._reported]
        self._reported.update(new)
        return new

    async def getmany(self, timeout_ms: int, max_records: int) -> Batch:
        """Like ``consumer.getmany()``; empty once the consumer is stopped (as its wait is)."""
        try:
            return await self._getmany(timeout_ms, max_records)
        except ConsumerStoppedError:
            return {}

    async def _getmany(self, timeout_ms: int, max_records: int) -> Batch:
        out = await self._drain_each(max_records)
        if not out:
            # Nothing buffered: wait for the fetcher, taking ONE record at most.
            try:
                first = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=1)
            except UNDECODABLE:
                first = {}  # the per-partition pass below finds which partition it is
            budget = max_records - sum(len(v) for v in first.values())
            rest = await self._drain_each(budget)
            out = first
            for tp, records in rest.items():
                out.setdefault(tp, []).extend(records)
        return out

    async def _drain_each(self, budget: int) -> Batch:
        out: Batch = {}
        for tp in sorted(self.consumer.assignment()):
            if budget <= 0:
                break
            q = self.quarantined.get(tp)
            limit = budget
            if q is not None:
                if q.paused:
                    continue
                position = await self.consumer.position(tp)
                if position >= q.bad_offset:
                    self.consumer.pause(tp)  # the fetcher stops asking for it
                    q.paused = True
                    log.error(
                        "%s: the record batch at offset %d cannot be decoded (%s);"
                        " partition paused, the others go on",
                        tp,
                        q.bad_offset,
                        q.error,
                    )
                    continue
                limit = min(budget, q.bad_offset - position)  # the good records before it
            try:
                got = await self.consumer.getmany(tp, timeout_ms=0, max_records=limit)
            except UNDECODABLE as exc:
                self._quarantine(tp, exc)
                continue
            records = got.get(tp)
            if records:
                out[tp] = records
                budget -= len(records)
        return out

    def _quarantine(self, tp: TopicPartition, exc: Exception) -> None:
        # After the error the partition's FetchResult stays buffered; its
        # PartitionRecords.next_fetch_offset is the offset after the last record it
        # could decode, i.e. the base offset of the undecodable batch.
        result = self.consumer._fetcher._records.get(tp)
        records = getattr(result, "_partition_records", None)
        bad = getattr(records, "next_fetch_offset", None)
        if bad is None:
            return  # not buffered any more: the next round will raise again
        if tp not in self.quarantined:
            self.quarantined[tp] = Quarantined(tp, bad, f"{type(exc).__name__}: {exc}")

    async def batch_header(self, tp: TopicPartition, offset: int) -> tuple[int, int, str]:
        """(base offset, next offset, codec) of the batch holding ``offset``: a raw Fetch,
        headers only (no decompression)."""
        client = self.consumer._client
        node = client.cluster.leader_for_partition(tp)
        request = FetchRequest(
            500, 1, 4 * 1_048_576, 0, [(tp.topic, [(tp.partition, offset, 4 * 1_048_576)])]
        )
        response = await client.send(node, request)
        for _topic, partitions in response.topics:
            for _partition, _error, _high, *data in partitions:
                records = MemoryRecords(data[-1])
                while records.has_next():
                    batch = records.next_batch()
                    if batch.next_offset > offset:
                        return (
                            batch.base_offset,
                            batch.next_offset,
                            CODECS.get(batch.compression_type, str(batch.compression_type)),
                        )
        raise LookupError(f"no batch at {tp} offset {offset}")

    async def skip(self, tp: TopicPartition) -> tuple[int, int, str]:
        """Seek past the quarantined batch and resume the partition; its offsets and codec."""
        q = self.quarantined.pop(tp)
        base, end, codec = await self.batch_header(tp, q.bad_offset)
        self.consumer.seek(tp, end)
        self.consumer.resume(tp)
        return base, end, codec

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """A rebalance took or gave partitions: their quarantine (and pause) is over."""
        for tp in partitions:
            self.quarantined.pop(tp, None)
            self._reported.discard(tp)

    def release(self, tp: TopicPartition) -> None:
        """Resume without skipping (e.g. the codec library is installed now)."""
        self.quarantined.pop(tp, None)
        self.consumer.resume(tp)


def require_codecs() -> None:
    """Refuse to start when a codec discovery agents use cannot be decoded.

    Without ``cramjam`` aiokafka 0.14 decodes gzip only; a snappy, lz4 or zstd
    batch then fails every fetch of its partition (and, in one ``getmany()``,
    costs other partitions their records). Fail at start, not at the first batch.
    """
    from aiokafka import codec

    missing = [
        n
        for n, has in (
            ("snappy", codec.has_snappy),
            ("lz4", codec.has_lz4),
            ("zstd", codec.has_zstd),
        )
        if not has()
    ]
    if missing:
        raise RuntimeError(
            f"cannot decode {', '.join(missing)} record batches:"
            " install aiokafka[snappy,lz4,zstd] (cramjam)"
        )
