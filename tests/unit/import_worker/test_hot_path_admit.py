"""The hot path around the engine: reading records back, the retry delay queue, redo, commit.

``DiscoveryConsumer`` is built, never started: its methods and its batch loop
are driven with a stub consumer and a stub engine.
"""

import time
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, GroupCoordinatorNotAvailableError, UnknownError

from services.import_worker.domain.inbound import Origin
from services.import_worker.entrypoints.hot_path import DiscoveryConsumer, to_in_record
from services.import_worker.metrics import WorkerMetrics
from services.import_worker.service_layer.engine import BatchResult

from .support import DISCOVERED, RETRY_TOPIC, record

pytestmark = pytest.mark.unit


def msg(
    offset: int,
    *,
    topic: str = DISCOVERED,
    partition: int = 0,
    headers: Sequence[tuple[str, bytes]] = (),
    key: bytes | None = b"k",
    value: bytes | None = b"v",
) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=1, serialized_value_size=1,
        headers=list(headers),
    )  # fmt: skip


def retry_msg(offset: int, due_in: float | None, partition: int = 0) -> ConsumerRecord:
    due = [] if due_in is None else [("x-not-before", str(int((time.time() + due_in) * 1000)))]
    hs = [("x-attempt", "1"), *due, ("x-original-topic", DISCOVERED)]
    return msg(
        offset, topic=RETRY_TOPIC, partition=partition, headers=[(k, v.encode()) for k, v in hs]
    )


class StubConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", tp, offset))

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", *tps))

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", *tps))


class StubEngine:
    """Fails its first ``failures`` calls with an outage (PostgreSQL went away)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def process(self, records: Sequence[Any]) -> BatchResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionResetError("engine: the database went away")
        return BatchResult(retried=len(records))


def service(engine: Any = None) -> DiscoveryConsumer:
    return DiscoveryConsumer(
        consumer_factory=StubConsumer,  # type: ignore[arg-type]
        engine=engine,
        metrics=WorkerMetrics(),
        topics=[DISCOVERED, RETRY_TOPIC],
        retry_topic=RETRY_TOPIC,
        max_records=100,
    )


# -- to_in_record ------------------------------------------------------------


def test_a_retried_record_gets_its_attempt_and_origin_back() -> None:
    hs = [
        ("x-attempt", b"3"), ("x-not-before", b"1"), ("x-original-topic", b"account.discovered"),
        ("x-original-partition", b"0"), ("x-original-offset", b"1234"),
    ]  # fmt: skip
    rec = to_in_record(msg(9, topic=RETRY_TOPIC, partition=2, headers=hs, key=None))
    assert (rec.topic, rec.partition, rec.offset, rec.key, rec.value) == (
        RETRY_TOPIC, 2, 9, None, b"v",
    )  # fmt: skip
    assert rec.attempt == 3
    assert rec.origin == Origin(DISCOVERED, 0, 1234)
    assert rec.first_seen == Origin(DISCOVERED, 0, 1234)
    assert rec.headers == tuple(hs)


def test_a_first_delivery_is_its_own_origin() -> None:
    rec = to_in_record(msg(5, partition=1))
    assert (rec.attempt, rec.origin) == (0, None)
    assert rec.first_seen == Origin(DISCOVERED, 1, 5)


@pytest.mark.parametrize(
    "hs",
    [
        [("x-attempt", b"two"), ("x-original-topic", b"t"), ("x-original-partition", b"p")],
        [("x-attempt", b"-1"), ("x-original-partition", b"1"), ("x-original-offset", b"2")],
        [("x-original-topic", b"t"), ("x-original-partition", b"1"), ("x-original-offset", b"")],
    ],
)
def test_malformed_retry_headers_fall_back_to_a_first_delivery(
    hs: list[tuple[str, bytes]],
) -> None:
    rec = to_in_record(msg(5, headers=hs))
    assert (rec.attempt, rec.origin) == (0, None)
    assert rec.first_seen == Origin(DISCOVERED, 0, 5)


# -- the delay queue ---------------------------------------------------------


def test_discovered_records_are_all_admitted_whatever_their_headers() -> None:
    consumer, svc = StubConsumer(), service()
    tp = TopicPartition(DISCOVERED, 0)
    future = [("x-not-before", str(int(time.time() * 1000) + 60_000).encode())]
    batch = {tp: [msg(10), msg(11, headers=future), msg(12)]}
    records, offsets = svc._admit(consumer, batch)  # type: ignore[arg-type]
    assert [r.offset for r in records] == [10, 11, 12]
    assert offsets == {tp: 13}
    assert consumer.calls == []


def test_retry_headers_count_only_on_the_retry_topic() -> None:
    """Headers on ``account.discovered`` come from agents, not from the worker.

    An agent's ``x-attempt: 9`` must not skip the back-off of an unknown
    customer, and its ``x-original-*`` must not be what the DLQ reports.
    """
    consumer, svc = StubConsumer(), service()
    tp = TopicPartition(DISCOVERED, 4)
    forged = [
        ("x-attempt", b"9"), ("x-original-topic", b"elsewhere"),
        ("x-original-partition", b"0"), ("x-original-offset", b"1"),
    ]  # fmt: skip
    records, _ = svc._admit(consumer, {tp: [msg(30, partition=4, headers=forged)]})  # type: ignore[arg-type]
    assert records[0].attempt == 0
    assert records[0].first_seen == Origin(DISCOVERED, 4, 30)


def test_a_record_not_yet_due_stops_its_partition_there() -> None:
    consumer, svc = StubConsumer(), service()
    retry0, retry1 = TopicPartition(RETRY_TOPIC, 0), TopicPartition(RETRY_TOPIC, 1)
    discovered0 = TopicPartition(DISCOVERED, 0)
    not_due = retry_msg(22, due_in=60)
    batch = {
        retry0: [retry_msg(20, -5), retry_msg(21, None), not_due, retry_msg(23, -60)],
        discovered0: [msg(7)],
        retry1: [retry_msg(3, -1, partition=1), retry_msg(4, -1, partition=1)],
    }
    records, offsets = svc._admit(consumer, batch)  # type: ignore[arg-type]

    assert [(r.topic, r.partition, r.offset) for r in records] == [
        (RETRY_TOPIC, 0, 20), (RETRY_TOPIC, 0, 21), (DISCOVERED, 0, 7),
        (RETRY_TOPIC, 1, 3), (RETRY_TOPIC, 1, 4),
    ]  # fmt: skip
    assert offsets == {retry0: 22, discovered0: 8, retry1: 5}
    assert consumer.calls == [("seek", retry0, 22), ("pause", retry0)]
    due_ms = int(dict(not_due.headers)["x-not-before"])
    assert svc._paused == {retry0: due_ms / 1000}
    assert all(r.attempt == 1 for r in records if r.topic == RETRY_TOPIC)


def test_a_partition_whose_first_record_is_not_due_commits_nothing() -> None:
    consumer, svc = StubConsumer(), service()
    tp = TopicPartition(RETRY_TOPIC, 3)
    records, offsets = svc._admit(consumer, {tp: [retry_msg(40, 30), retry_msg(41, -1)]})  # type: ignore[arg-type]
    assert records == []
    assert offsets == {}
    assert consumer.calls == [("seek", tp, 40), ("pause", tp)]


def test_offsets_never_pass_a_record_that_is_not_due() -> None:
    consumer, svc = StubConsumer(), service()
    tp = TopicPartition(RETRY_TOPIC, 0)
    dues = [-1, -1, 5, -1, 10, -1]
    batch = {tp: [retry_msg(100 + i, d) for i, d in enumerate(dues)]}
    _, offsets = svc._admit(consumer, batch)  # type: ignore[arg-type]
    first_not_due = 100 + next(i for i, d in enumerate(dues) if d > 0)
    assert offsets[tp] == first_not_due
    assert ("seek", tp, first_not_due) in consumer.calls


def test_paused_partitions_resume_when_their_time_has_come() -> None:
    consumer, svc = StubConsumer(), service()
    due, later, also_due = (TopicPartition(RETRY_TOPIC, p) for p in range(3))
    now = time.time()
    svc._paused = {due: now - 1, later: now + 60, also_due: now - 0.001}
    svc._resume_due(consumer)  # type: ignore[arg-type]
    assert len(consumer.calls) == 1
    assert consumer.calls[0][0] == "resume"
    assert set(consumer.calls[0][1:]) == {due, also_due}
    assert svc._paused == {later: now + 60}

    svc._resume_due(consumer)  # type: ignore[arg-type]
    assert len(consumer.calls) == 1, "nothing due: no resume call"


def test_a_reassignment_forgets_partitions_that_went_elsewhere() -> None:
    svc = service()
    kept, gone = TopicPartition(RETRY_TOPIC, 0), TopicPartition(RETRY_TOPIC, 1)
    svc._paused = {kept: 1.0, gone: 2.0}
    svc.forget_paused([kept, TopicPartition(DISCOVERED, 0)])
    assert svc._paused == {kept: 1.0}


# -- redo until done ---------------------------------------------------------


async def _no_sleep(_: float) -> None:
    return None


async def test_a_batch_failing_in_an_outage_is_redone_whole_until_it_succeeds() -> None:
    engine = StubEngine(failures=3)
    svc = service(engine)
    svc.sleep = _no_sleep  # type: ignore[method-assign]
    records = [record(b"x", offset=i) for i in range(4)]
    result = await svc._process_until_done(records)
    assert result == BatchResult(retried=4)
    assert engine.calls == 4
    assert svc.healthy
    failures = svc.metrics.registry.get_sample_value(
        "import_batch_failures_total", {"error": "ConnectionResetError"}
    )
    assert failures == 3


async def test_an_abandoned_batch_is_given_up_uncommitted() -> None:
    engine = StubEngine(failures=10)
    svc = service(engine)

    async def abandon(_: float) -> None:
        svc._abandon = True  # a rebalance took the partitions meanwhile

    svc.sleep = abandon  # type: ignore[method-assign]
    assert await svc._process_until_done([record(b"x")]) is None
    assert engine.calls == 1
    assert not svc.healthy


# -- the batch loop: commit after the engine, never past a record not due ------


class LoopConsumer(StubConsumer):
    """Hands out the given batches (each one fetch: aiokafka's buffer), then stops the
    service. ``getmany(*partitions)`` takes from the buffer as aiokafka does, so the
    hot path's per-partition draining (``IsolatingFetch``) sees what it would."""

    def __init__(self, svc: DiscoveryConsumer, batches: list[dict[TopicPartition, Any]]) -> None:
        super().__init__()
        self.svc, self.batches = svc, batches
        self.buffer: dict[TopicPartition, list[Any]] = {}
        self.fail_commit = False

    def assignment(self) -> set[TopicPartition]:
        return {tp for batch in [self.buffer, *self.batches] for tp in batch}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, Any]:
        if not any(self.buffer.values()):
            if partitions:  # a drain: nothing buffered, nothing fetched (timeout 0)
                return {}
            if not self.batches:
                self.svc._stopped.set()
                return {}
            self.buffer = {tp: list(records) for tp, records in self.batches.pop(0).items()}
        out: dict[TopicPartition, Any] = {}
        for tp in partitions or sorted(self.buffer):
            take, self.buffer[tp] = (
                self.buffer.get(tp, [])[:max_records],
                self.buffer.get(tp, [])[max_records:],
            )
            if take:
                out[tp] = take
                max_records -= len(take)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.append(("commit", dict(offsets)))
        if self.fail_commit:
            raise CommitFailedError("rebalanced")

    def highwater(self, tp: TopicPartition) -> int:
        return 50


class WatchedEngine(StubEngine):
    def __init__(self, consumer: StubConsumer, failures: int) -> None:
        super().__init__(failures)
        self.consumer = consumer
        self.seen: list[list[int]] = []

    async def process(self, records: Sequence[Any]) -> BatchResult:
        assert not [c for c in self.consumer.calls if c[0] == "commit"], "committed too early"
        self.seen.append([r.offset for r in records])
        return await super().process(records)


@pytest.mark.parametrize("commit_fails", [False, True])
async def test_the_loop_commits_admitted_offsets_after_the_engine_succeeds(
    commit_fails: bool,
) -> None:
    svc = service()
    discovered0, retry0 = TopicPartition(DISCOVERED, 0), TopicPartition(RETRY_TOPIC, 0)
    batch = {
        discovered0: [msg(0), msg(1), msg(2)],
        retry0: [retry_msg(5, -1), retry_msg(6, 60), retry_msg(7, -1)],
    }
    consumer = LoopConsumer(svc, [{}, {retry0: [retry_msg(0, 60)]}, batch])
    consumer.fail_commit = commit_fails
    engine = WatchedEngine(consumer, failures=2)
    svc.engine, svc.consumer = engine, consumer  # type: ignore[assignment]
    svc.sleep = _no_sleep  # type: ignore[method-assign]

    await DiscoveryConsumer._consume_batches(svc)

    assert engine.seen == [[0, 1, 2, 5]] * 3
    commits = [c for c in consumer.calls if c[0] == "commit"]
    assert commits == [("commit", {discovered0: 3, retry0: 6})]
    assert svc.batches_done == 1  # a lost commit is redone by the next owner
    lag = svc.metrics.registry.get_sample_value("import_consumer_lag", {"topic": DISCOVERED})
    assert lag == 50 - 2 - 1


async def test_a_rebalance_waits_for_the_batch_in_flight_or_abandons_it() -> None:
    svc = service()
    svc.drain_timeout = 0.01
    paused, other = TopicPartition(RETRY_TOPIC, 0), TopicPartition(RETRY_TOPIC, 1)
    svc._paused = {paused: 1.0, other: 2.0}
    await svc.drain([paused])
    assert svc._paused == {other: 2.0}
    assert not svc._abandon

    async with svc._in_flight:
        await svc.drain([other])
    assert svc._abandon
    assert svc._paused == {other: 2.0}


class FlakyBrokerConsumer(LoopConsumer):
    """A fetch that fails with a coordinator error, then commits that fail too."""

    def __init__(self, svc: DiscoveryConsumer, batches: list[dict[TopicPartition, Any]]) -> None:
        super().__init__(svc, batches)
        self.fetch_failures = 1

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, Any]:
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise GroupCoordinatorNotAvailableError()
        return await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.append(("commit", dict(offsets)))
        raise UnknownError("the broker refused the commit")


async def test_broker_errors_in_fetch_or_commit_never_end_the_loop() -> None:
    """Such errors escaping the loop crashed the service; the batch is redone instead."""
    svc = service(StubEngine(failures=0))
    svc.sleep = _no_sleep  # type: ignore[method-assign]
    p0 = TopicPartition(DISCOVERED, 0)
    consumer = FlakyBrokerConsumer(svc, [{p0: [msg(0)]}, {p0: [msg(1)]}])
    svc.consumer = consumer  # type: ignore[assignment]

    await DiscoveryConsumer._consume_batches(svc)  # must return, not raise

    assert [c[1] for c in consumer.calls if c[0] == "commit"] == [{p0: 1}, {p0: 2}]
    assert svc.batches_done == 2
