"""The policy service's read model of what happened: ``import.decisions`` and
``command.results`` in, the accounts (docs/contract.md §8) and each
integration's status (§6) out.

One consumer group follows both topics. A batch (up to ``batch_size``
records) is reduced in memory to one decision per account and one result per
command, written in one transaction (:class:`AccountStore`), and only then
are its offsets committed: a crash replays the batch, which changes nothing
the second time. An outage is waited out, never skipped. A record that is no
decision or result of ours is counted and passed over (the worker and the
handlers are its producers; there is nothing to retry); a batch PostgreSQL
refuses for a reason of its own (a value it cannot store) is split until the
record at fault is found, and that one is counted and passed over too, so one
bad record never stalls the accounts of every partner.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.infra.failures import is_transient
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done
from services.infra.shutdown import stop_consumer
from services.policy_service.adapters.accounts import AccountStore
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.repository import Repository
from services.policy_service.domain.accounts import Batch, DecisionRow, ResultRow, read_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadModelConfig:
    bootstrap_servers: str
    topics: tuple[str, ...]  # import.decisions, command.results
    group_id: str
    batch_size: int = 5000


class ReadModelMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "read_model_records",
            "import.decisions and command.results records read, by what came of them",
            ["result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "read_model_batch_seconds",
            "Time to write one batch of the read model",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )


class ReadModelConsumer:
    """Follows ``import.decisions`` and ``command.results`` until stopped."""

    def __init__(self, config: ReadModelConfig, db: Database, registry: CollectorRegistry) -> None:
        self.config = config
        self.db = db
        self.metrics = ReadModelMetrics(registry)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        with contextlib.suppress(ShutdownRequested):
            await retry_until_done(
                self._session,
                what="project import.decisions and command.results",
                stop=StopSignal(event=self._stopping),
                logger=log,
            )

    async def _session(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.config.topics,
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            client_id="policy-service-read-model",
        )
        try:
            await consumer.start()  # inside: a start that fails half way is stopped too
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.config.batch_size)
                records: list[ConsumerRecord] = [r for rs in batch.values() for r in rs]
                if not records:
                    continue
                await self.apply(r.value for r in records)
                await consumer.commit()
        finally:
            await stop_consumer(consumer, timeout=2.0)

    async def apply(self, values: Iterable[bytes | None]) -> None:
        """Write what ``values`` say; returns once it is durable."""
        batch = read_batch(values)
        self._count_unread(batch)
        with self.metrics.batch_seconds.time():
            await self._write(list(batch.decisions.values()), list(batch.results.values()))
            reports = batch.statuses()
            if reports:
                async with self.db.pool.acquire() as conn:
                    changed = await Repository(conn).report_integration_status(reports)
                self.metrics.records.labels("status").inc(changed)
        self.metrics.records.labels("decision").inc(len(batch.decisions))
        self.metrics.records.labels("result").inc(len(batch.results))

    async def _write(self, decisions: Sequence[DecisionRow], results: Sequence[ResultRow]) -> None:
        if not decisions and not results:
            return
        try:
            async with self.db.pool.acquire() as conn:
                await AccountStore(conn).apply(decisions, results)
        except Exception as exc:
            if is_transient(exc):
                raise  # waited out by the session's retry, from the last commit
            if len(decisions) + len(results) == 1:
                self.metrics.records.labels("refused").inc()
                what = decisions[0].key if decisions else results[0].result.account_key
                log.error(
                    "the read model refused a record; passed over",
                    extra={"account_key": what, "error": f"{type(exc).__name__}: {exc}"[:500]},
                )
                return
            # Isolate the record at fault: each half in its own transaction.
            items: list[DecisionRow | ResultRow] = [*decisions, *results]
            middle = len(items) // 2
            for half in (items[:middle], items[middle:]):
                await self._write(
                    [d for d in half if isinstance(d, DecisionRow)],
                    [r for r in half if isinstance(r, ResultRow)],
                )

    def _count_unread(self, batch: Batch) -> None:
        if batch.unreadable:
            self.metrics.records.labels("unreadable").inc(batch.unreadable)
            log.warning("%d records were no decision or result of ours", batch.unreadable)
        if batch.foreign:
            self.metrics.records.labels("foreign").inc(batch.foreign)
            log.warning("%d records were about another partner's account", batch.foreign)
