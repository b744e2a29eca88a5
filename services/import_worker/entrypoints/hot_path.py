"""The ``account.discovered`` hot path: a batched aiokafka consumer run as a mode service.

Nothing is fetched until the start-up ``gate`` opens (the projection has caught
up with the policy and customer topics). Then, per loop: fetch a batch, hand it
to the :class:`BatchEngine`, then commit the batch's offsets. One batch is in
flight at a time (back-pressure is the consumer itself). If PostgreSQL or the
broker fails, the same batch is retried with back-off and nothing is committed
meanwhile. A rebalance waits for the batch in flight to finish (or abandons it,
uncommitted) before partitions go. A batch that fails for another reason than
an outage is handed to the :class:`PoisonIsolator`, which dead-letters the
records at fault and lets the rest through.

The retry topic is a durable delay queue: a record not yet due makes the
consumer seek back to it and pause that partition until it is, so waiting
never blocks ``account.discovered`` itself.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError

from services.import_worker.domain.inbound import InRecord, Origin
from services.import_worker.metrics import WorkerMetrics
from services.import_worker.service_layer.engine import BatchEngine, BatchResult
from services.import_worker.service_layer.isolation import Abandoned, IsTransient, PoisonIsolator
from services.infra.failures import is_transient as infrastructure_failure
from services.infra.isolated_fetch import IsolatingFetch
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done
from services.infra.shutdown import stop_consumer

log = logging.getLogger(__name__)

ConsumerFactory = Callable[[], AIOKafkaConsumer]


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def to_in_record(msg: ConsumerRecord, *, from_retry_topic: bool = True) -> InRecord:
    """A consumed record as the engine sees it; retry headers restore its history.

    Only records of the worker's own retry topic carry a history: on
    ``account.discovered`` those headers come from agents and are ignored.
    """
    headers = tuple(msg.headers or ())
    if not from_retry_topic:
        return InRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value, headers=headers)
    attempt = _header(headers, "x-attempt")
    origin = None
    topic, partition, offset = (
        _header(headers, "x-original-topic"),
        _header(headers, "x-original-partition"),
        _header(headers, "x-original-offset"),
    )
    if topic and partition and offset and partition.isdigit() and offset.isdigit():
        origin = Origin(topic, int(partition), int(offset))
    return InRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        attempt=int(attempt) if attempt and attempt.isdigit() else 0,
        origin=origin,
        headers=headers,
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: "DiscoveryConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.drain(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.owner.forget_paused(assigned)


class DiscoveryConsumer(mode.Service):
    """Consumes discovered accounts in batches; owns the commit of their offsets."""

    def __init__(
        self,
        *,
        consumer_factory: ConsumerFactory,
        engine: BatchEngine,
        metrics: WorkerMetrics,
        topics: Sequence[str],
        retry_topic: str,
        max_records: int,
        backoff_max: float = 10.0,
        drain_timeout: float = 5.0,
        close_timeout: float = 2.0,
        is_transient: IsTransient = infrastructure_failure,
        gate: asyncio.Event | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._factory = consumer_factory
        self.engine = engine
        self.metrics = metrics
        self.topics = list(topics)
        self.retry_topic = retry_topic
        self.max_records = max_records
        self.backoff_max = backoff_max
        self.drain_timeout = drain_timeout
        self.close_timeout = close_timeout
        self.is_transient = is_transient
        self.gate = gate
        self.consumer: AIOKafkaConsumer | None = None
        self._fetch: IsolatingFetch | None = None
        self._in_flight = asyncio.Lock()
        self._abandon = False
        self._paused: dict[TopicPartition, float] = {}
        self.batches_done = 0
        self.healthy = False

    async def on_start(self) -> None:
        self.consumer = self._factory()
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))
        await self.consumer.start()
        self.healthy = True

    async def on_stop(self) -> None:
        """Let the batch in flight finish and commit, then leave the group; both bounded.

        A batch that cannot finish within ``drain_timeout`` (the broker or
        PostgreSQL is away) is abandoned: its offsets are not committed, and
        whoever gets its partitions next redoes it (same ids).
        """
        try:
            await asyncio.wait_for(self._in_flight.acquire(), timeout=self.drain_timeout)
            drained = True
        except TimeoutError:
            drained = False
            self._abandon = True
            log.warning("stopping: abandoned the batch in flight (not committed)")
        try:
            consumer, self.consumer = self.consumer, None
            if consumer is not None:
                await stop_consumer(consumer, timeout=self.close_timeout)
        finally:
            if drained:
                self._in_flight.release()

    # -- rebalance ---------------------------------------------------------------

    async def drain(self, revoked: list[TopicPartition]) -> None:
        """Let the batch in flight finish and commit; abandon it if it cannot in time."""
        try:
            await asyncio.wait_for(self._in_flight.acquire(), timeout=self.drain_timeout)
        except TimeoutError:
            self._abandon = True  # its offsets stay uncommitted: the new owner redoes it
            log.warning("abandoned the batch in flight at a rebalance")
            return
        self._in_flight.release()
        for tp in revoked:
            self._paused.pop(tp, None)

    def undecodable(self) -> list[str]:
        """The partitions paused on a record batch that cannot be decoded (for /readyz)."""
        if self._fetch is None:
            return []
        return [
            f"{q.tp.topic}[{q.tp.partition}] at offset {q.bad_offset}: {q.error}"
            for q in self._fetch.quarantined.values()
        ]

    def forget_paused(self, assigned: list[TopicPartition]) -> None:
        if self._fetch is not None:
            # A new assignment resets aiokafka's pause flags: a bad batch is met again.
            self._fetch.forget(list(self._fetch.quarantined))
        self._paused = {tp: due for tp, due in self._paused.items() if tp in assigned}

    # -- the loop ----------------------------------------------------------------

    @mode.Service.task
    async def _consume_batches(self) -> None:
        while not self.should_stop:
            consumer = self.consumer
            if consumer is None:
                await self.sleep(0.1)
                continue
            if self.gate is not None and not self.gate.is_set():
                # Start-up: nothing is decided before the projection has caught up.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.gate.wait(), timeout=0.1)
                continue
            self._resume_due(consumer)
            try:
                # Per partition: a record batch that cannot be decoded pauses its own
                # partition instead of failing (and emptying) the whole fetch.
                if self._fetch is None or self._fetch.consumer is not consumer:
                    self._fetch = IsolatingFetch(consumer)
                batch = await self._fetch.getmany(timeout_ms=200, max_records=self.max_records)
                for tp in self._fetch.newly_quarantined():
                    self.metrics.undecodable.labels(tp.topic).inc()
            except ConsumerStoppedError:  # on_stop() closed it: we are stopping
                break
            except KafkaError:  # coordinator or fetch errors: nothing consumed, ask again
                log.warning("fetching a batch failed; retrying", exc_info=True)
                await self.sleep(1.0)
                continue
            if not batch:
                continue
            records, offsets = self._admit(consumer, batch)
            self._observe_lag(consumer, batch)
            if not records:
                continue
            async with self._in_flight:
                self._abandon = False
                started = time.perf_counter()
                result = await self._process_until_done(records)
                if result is None:
                    continue
                # Abandoned at a rebalance: its partitions may be another member's now
                # (committing them raises IllegalStateError); the new owners redo it.
                if not self._abandon:
                    try:
                        await consumer.commit(offsets)
                    except (CommitFailedError, IllegalStateError):
                        pass  # a rebalance won: the batch is redone elsewhere
                    except KafkaError:  # uncommitted: redone (same ids) after a restart
                        log.warning("committing a batch's offsets failed", exc_info=True)
                self.metrics.record(result, len(records), time.perf_counter() - started)
                self.batches_done += 1

    async def _process_until_done(self, records: list[InRecord]) -> BatchResult | None:
        """The engine's result; on failure back off and retry the same batch.

        An outage is waited out; any other failure makes the next attempt go
        through the isolator, which dead-letters the records at fault. None when
        the batch was given up (a stop, or a rebalance took its partitions).
        """
        isolate = False

        def failed(exc: BaseException) -> None:
            nonlocal isolate
            self.healthy = False
            isolate = not self.is_transient(exc)
            self.metrics.failures.labels(type(exc).__name__).inc()

        async def attempt() -> BatchResult:
            if isolate:
                result = await self._isolator().process(records)
            else:
                result = await self.engine.process(records)
            self.healthy = True
            return result

        try:
            return await retry_until_done(
                attempt,
                what="process a batch",
                stop=StopSignal(lambda: self.should_stop or self._abandon, sleep=self.sleep),
                retry_on=lambda exc: not isinstance(exc, Abandoned),
                initial=0.1,
                maximum=self.backoff_max,
                on_failure=failed,
                logger=log,
            )
        except (Abandoned, ShutdownRequested):
            return None

    def _isolator(self) -> PoisonIsolator:
        return PoisonIsolator(
            self.engine, self.is_transient, given_up=lambda: self.should_stop or self._abandon
        )

    def _admit(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> tuple[list[InRecord], dict[TopicPartition, int]]:
        """Records due now, and the offsets to commit once they are done."""
        now_ms = time.time() * 1000
        records: list[InRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in batch.items():
            take = messages
            if tp.topic == self.retry_topic:
                for i, msg in enumerate(messages):
                    due = _header(tuple(msg.headers or ()), "x-not-before")
                    if due and due.isdigit() and int(due) > now_ms:
                        take = messages[:i]
                        consumer.seek(tp, msg.offset)
                        consumer.pause(tp)
                        self._paused[tp] = int(due) / 1000
                        break
            if take:
                retried = tp.topic == self.retry_topic
                records.extend(to_in_record(m, from_retry_topic=retried) for m in take)
                offsets[tp] = take[-1].offset + 1
        return records, offsets

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.time()
        due = [tp for tp, at in self._paused.items() if at <= now]
        for tp in due:
            del self._paused[tp]
        if due:
            consumer.resume(*due)

    def _observe_lag(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        """Lag from the fetched high watermark (Tansu's end_offsets() under-reports)."""
        per_topic: dict[str, int] = {}
        for tp, messages in batch.items():
            with contextlib.suppress(KafkaError, AssertionError, TypeError):
                high = consumer.highwater(tp)
                if high is not None and messages:
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(
                        0, high - messages[-1].offset - 1
                    )
        for topic, lag in per_topic.items():
            self.metrics.lag.labels(topic).set(lag)
