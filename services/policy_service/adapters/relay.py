"""The outbox relay: publishes committed outbox rows to Kafka, in commit order per key.

Correctness rests on three choices:

* It reads only rows whose writing transaction id is below the oldest one
  still running (``pg_snapshot_xmin``), in ``(txid, id)`` order. A row whose
  transaction took its id early but commits late is therefore read after it
  commits, never skipped (the "sequence trap" of reading ``id > last``).
* A row is marked published only after the broker acknowledged it (acks=all).
  A crash in between re-publishes the same event (same CloudEvents id); the
  aggregate's ``version`` lets consumers ignore the repeat.
* One relay publishes at a time: a session-level advisory lock, held on the
  relay's own connection. Other replicas wait on standby and take over when
  that connection (or its process) dies.

NOTIFY wakes it promptly; polling is the fallback, so a lost notification
only delays, never loses.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.infra.kafka_admin import ensure_topics

log = logging.getLogger(__name__)

CHANNEL = "policy_service_outbox"
LOCK_KEY = "policy_service:outbox_relay"

_FETCH = """
SELECT id, topic, key, value, headers,
       extract(epoch FROM clock_timestamp() - created_at) AS age
FROM policy_service.outbox
WHERE published_at IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, id
LIMIT $1
"""


@dataclass(frozen=True)
class RelayConfig:
    dsn: str
    bootstrap_servers: str
    poll_interval: float = 0.5
    batch_size: int = 500
    retention_hours: float = 24.0
    request_timeout_ms: int = 10_000
    topics: tuple[str, ...] = ()
    partitions: int = 8


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "outbox_events_published", "Outbox events acknowledged by the broker", registry=registry
        )
        self.backlog = Gauge("outbox_backlog", "Outbox rows not yet published", registry=registry)
        self.lag = Histogram(
            "outbox_publish_lag_seconds",
            "From commit of the change to broker ack",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.leader = Gauge(
            "outbox_relay_leader", "1 while this process holds the relay lock", registry=registry
        )
        self.failures = Counter(
            "outbox_relay_failures", "Relay rounds that failed and were retried", registry=registry
        )


ProducerFactory = Callable[[], AIOKafkaProducer]


class OutboxRelay:
    """Publishes the outbox until stopped; survives database and broker outages."""

    def __init__(
        self,
        config: RelayConfig,
        metrics: RelayMetrics,
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._producer_factory = producer_factory or self._default_producer
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def _default_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers,
            acks="all",
            enable_idempotence=False,  # Tansu has none; ordering comes from one relay
            linger_ms=2,
            request_timeout_ms=self.config.request_timeout_ms,
            client_id="policy-service-outbox-relay",
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Hold the lock and publish; on any failure back off and start over."""
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.failures.inc()
                log.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self.metrics.leader.set(0)

    async def _session(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.config.dsn)
        producer: AIOKafkaProducer | None = None
        try:
            await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", LOCK_KEY
            ):
                if self._stopping.is_set():
                    return
                await self._sleep(self.config.poll_interval * 4)
            self.metrics.leader.set(1)
            log.info("outbox relay holds the lock")
            await ensure_topics(
                self.config.bootstrap_servers, self.config.topics, self.config.partitions
            )
            producer = self._producer_factory()
            await producer.start()
            rounds = 0
            while not self._stopping.is_set():
                sent = await self.publish_once(conn, producer)
                rounds += 1
                if rounds % 200 == 0:
                    await self._expire(conn)
                if sent < self.config.batch_size:
                    await self._sleep(self.config.poll_interval)
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def publish_once(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        """Publish one batch of committed rows; mark them only once all are acked."""
        self._wake.clear()
        rows = await conn.fetch(_FETCH, self.config.batch_size)
        if rows:
            # Before too: a send into a topic the broker lost is acked and dropped, and
            # the rows of a batch that half landed would be re-sent behind newer ones.
            await self._topics_exist(producer, {row["topic"] for row in rows})
            futures = [
                await producer.send(
                    row["topic"],
                    value=bytes(row["value"]),
                    key=row["key"].encode(),
                    headers=[(k, str(v).encode()) for k, v in json.loads(row["headers"]).items()],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await self._topics_exist(producer, {row["topic"] for row in rows})
            await conn.execute(
                "UPDATE policy_service.outbox SET published_at = clock_timestamp()"
                " WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
            self.metrics.published.inc(len(rows))
            for row in rows:
                self.metrics.lag.observe(float(row["age"]))
        backlog = await conn.fetchval(
            "SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL"
        )
        self.metrics.backlog.set(backlog)
        return len(rows)

    @staticmethod
    async def _topics_exist(producer: AIOKafkaProducer, topics: set[str]) -> None:
        """Refuse acks for topics the broker no longer has.

        A broker that lost its topics (Tansu's memory storage after a restart)
        acknowledges writes to them and drops them. Raising keeps the rows
        unpublished; the next session recreates the topics and sends them again.
        """
        if not await producer.client.force_metadata_update():
            raise RuntimeError("could not refresh the broker's metadata")
        missing = topics - producer.client.cluster.topics()
        if missing:
            raise RuntimeError(f"the broker lost topics {sorted(missing)}; recreating them")

    async def _expire(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "DELETE FROM policy_service.outbox WHERE published_at < now() - $1 * interval '1 hour'",
            self.config.retention_hours,
        )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
