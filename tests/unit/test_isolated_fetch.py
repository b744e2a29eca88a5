"""``IsolatingFetch``: a record batch that cannot be decoded pauses its own partition and
costs no other partition a record (``services/infra/isolated_fetch.py``).

aiokafka raises the decoding error out of ``getmany()`` after it has taken the records
of partitions it visited earlier in the same call, so those were lost; the fake below
does what aiokafka does, per partition: a partition's buffer holds decodable records
up to the bad batch, and asking for records past them raises.
"""

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import UnsupportedCodecError

from services.infra.isolated_fetch import IsolatingFetch, require_codecs

pytestmark = pytest.mark.unit

T = "account.discovered"
P0, P1, P2 = (TopicPartition(T, p) for p in range(3))


def _record(tp: TopicPartition, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic=tp.topic, partition=tp.partition, offset=offset, timestamp=0, timestamp_type=0,
        key=b"k", value=b"v", checksum=None, serialized_key_size=1, serialized_value_size=1,
        headers=[],
    )  # fmt: skip


class FakeConsumer:
    """Per partition: decodable records, then (maybe) a batch that raises at ``bad``."""

    def __init__(self, records: dict[TopicPartition, int], bad: dict[TopicPartition, int]) -> None:
        self.next = dict.fromkeys(records, 0)
        self.end = dict(records)
        self.bad = bad
        self.paused: set[TopicPartition] = set()
        # What IsolatingFetch reads to learn where the bad batch starts.
        self._fetcher = SimpleNamespace(_records={})

    def assignment(self) -> set[TopicPartition]:
        return set(self.next)

    async def position(self, tp: TopicPartition) -> int:
        return self.next[tp]

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Any]]:
        out: dict[TopicPartition, list[Any]] = {}
        for tp in partitions or sorted(self.next):
            if tp in self.paused:
                continue
            stop = min(self.end[tp], self.bad.get(tp, self.end[tp]))
            if self.next[tp] >= stop and tp in self.bad:
                # aiokafka: records already taken from other partitions are gone by now
                self._fetcher._records[tp] = SimpleNamespace(
                    _partition_records=SimpleNamespace(next_fetch_offset=self.bad[tp])
                )
                raise UnsupportedCodecError("Libraries for snappy compression codec not found")
            take = list(range(self.next[tp], min(stop, self.next[tp] + max_records)))
            if take:
                out[tp] = [_record(tp, o) for o in take]
                self.next[tp] = take[-1] + 1
                max_records -= len(take)
            if max_records <= 0:
                break
        return out


async def test_a_bad_batch_pauses_its_partition_and_no_other_record_is_lost() -> None:
    consumer = FakeConsumer({P0: 10, P1: 10, P2: 10}, bad={P1: 3})
    fetch = IsolatingFetch(consumer)  # type: ignore[arg-type]
    got: dict[TopicPartition, list[int]] = {P0: [], P1: [], P2: []}
    for _ in range(10):
        batch = await fetch.getmany(timeout_ms=0, max_records=4)
        for tp, records in batch.items():
            got[tp].extend(r.offset for r in records)

    assert got[P0] == list(range(10))
    assert got[P2] == list(range(10))
    assert got[P1] == [0, 1, 2]  # the good records before the bad batch, then it stops
    assert P1 in consumer.paused
    assert set(fetch.quarantined) == {P1}
    assert fetch.quarantined[P1].bad_offset == 3
    assert "snappy" in fetch.quarantined[P1].error
    assert fetch.newly_quarantined() == [P1]
    assert fetch.newly_quarantined() == []  # counted once


async def test_a_new_assignment_forgets_the_quarantine() -> None:
    consumer = FakeConsumer({P0: 2, P1: 2}, bad={P1: 0})
    fetch = IsolatingFetch(consumer)  # type: ignore[arg-type]
    await fetch.getmany(timeout_ms=0, max_records=10)
    assert set(fetch.quarantined) == {P1}
    fetch.forget([P1])
    assert fetch.quarantined == {}


def test_every_codec_the_agents_use_can_be_decoded() -> None:
    require_codecs()  # the services install aiokafka's codec extras (cramjam)
