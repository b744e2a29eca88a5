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
  relay's own connection, which is also the connection it reads and marks
  rows on. Other replicas wait on standby and take over when that
  connection (or its process) dies. The connection asks the server for TCP
  keepalives (``tcp_keepalives_*``, ``tcp_user_timeout``), so a leader that
  vanished without closing its socket (a crashed host, a partition) loses
  the lock in seconds rather than after the kernel's two-hour default; and
  every statement has a timeout, so a leader whose server went silent stops
  at its next statement instead of hanging.

The residual window: a batch the leader had already handed to the broker
when its connection failed is not marked published, so the next leader
sends it again. Those duplicates carry the same CloudEvents ids and
versions; each key's first occurrences stay in order (a key's rows of one
batch travel in one produce request), and consumers' version guards drop
the repeats.

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

from services.infra.failures import is_outage
from services.infra.kafka_admin import ensure_topics
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done
from services.infra.shutdown import stop_producer

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
    statement_timeout: float = 10.0
    stop_grace: float = 2.0
    keepalive_seconds: int = 5


def leadership_settings(keepalive_seconds: int) -> dict[str, str]:
    """Server settings of the lock's connection: notice a vanished client in seconds.

    The server probes an idle connection after ``keepalive_seconds``, then every
    ``keepalive_seconds / 2`` (at least 1 s), three times, and gives up on
    unacknowledged data after about the same time; on a dead client it then
    ends the session and so releases the advisory lock. (Ignored on Unix sockets,
    where the kernel reports a dead peer at once.)
    """
    interval = max(1, keepalive_seconds // 2)
    return {
        "tcp_keepalives_idle": str(keepalive_seconds),
        "tcp_keepalives_interval": str(interval),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str((keepalive_seconds + 3 * interval) * 1000),
    }


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
        """Hold the lock and publish; on any failure back off and start over, until stopped.

        Returns within ``stop_grace`` (plus a second to close the producer) of
        :meth:`stop`, whatever it waits on: a round still waiting for the broker's
        acks, its metadata or topic creation is cancelled, and its rows, not
        marked published, are sent again by the next leader (same ids).
        """
        work = asyncio.create_task(self._run(), name="outbox-relay-rounds")
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait({work}, timeout=self.config.stop_grace)
            if not work.done():
                log.warning("stopping: the outbox relay gave up a round waiting on the broker")
                work.cancel()
                await asyncio.wait({work}, timeout=self.config.stop_grace)
        finally:
            stopped.cancel()
            if not work.done():
                work.cancel()
        if work.done() and not work.cancelled():
            work.result()  # a crash of the relay itself is the caller's to see

    async def _run(self) -> None:
        stop = StopSignal(event=self._stopping)
        while not self._stopping.is_set():
            try:
                await retry_until_done(
                    self._session,
                    what="run the outbox relay",
                    stop=stop,
                    on_failure=self._failed,
                    logger=log,
                )
            except ShutdownRequested:
                return
            finally:
                self.metrics.leader.set(0)

    def _failed(self, exc: BaseException) -> None:
        self.metrics.leader.set(0)
        self.metrics.failures.inc()
        if not is_outage(exc):
            log.error("outbox relay failed on something other than an outage", exc_info=exc)

    async def _connect(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.config.dsn,
            timeout=self.config.statement_timeout,
            command_timeout=self.config.statement_timeout,
            server_settings=leadership_settings(self.config.keepalive_seconds),
        )
        return conn

    async def _session(self) -> None:
        """One connection: wait for the lock, then publish until stopped or it fails."""
        conn = await self._connect()
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
            self.metrics.leader.set(0)
            if producer is not None:
                # stop() flushes: with the broker away it would wait out every unacked
                # batch's request_timeout_ms. Stopping, those rows are not marked: give up.
                await stop_producer(
                    producer,
                    timeout=1.0 if self._stopping.is_set() else self.config.statement_timeout,
                )
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def publish_once(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        """Publish one batch of committed rows; mark them only once all are acked.

        The rows are locked (``FOR UPDATE``) before anything is sent, in the
        transaction that marks them: a database that refuses writes (read-only
        after a failover, a full disk) refuses the lock, so nothing is sent
        that could not be marked, instead of the same batch being re-sent at
        every retry for as long as the database stays read-only.
        """
        self._wake.clear()
        rows = await conn.fetch(_FETCH, self.config.batch_size)
        if rows:
            ids = [row["id"] for row in rows]
            async with conn.transaction():
                await conn.execute(
                    "SELECT 1 FROM policy_service.outbox WHERE id = ANY($1::bigint[]) FOR UPDATE",
                    ids,
                )
                # Before too: a send into a topic the broker lost is acked and dropped, and
                # the rows of a batch that half landed would be re-sent behind newer ones.
                await self._topics_exist(producer, {row["topic"] for row in rows})
                futures = [
                    await producer.send(
                        row["topic"],
                        value=bytes(row["value"]),
                        key=row["key"].encode(),
                        headers=[
                            (k, str(v).encode()) for k, v in json.loads(row["headers"]).items()
                        ],
                    )
                    for row in rows
                ]
                await asyncio.gather(*futures)
                await self._topics_exist(producer, {row["topic"] for row in rows})
                await conn.execute(
                    "UPDATE policy_service.outbox SET published_at = clock_timestamp()"
                    " WHERE id = ANY($1::bigint[])",
                    ids,
                )
            self.metrics.published.inc(len(rows))
            for row in rows:
                self.metrics.lag.observe(float(row["age"]))
        backlog = await conn.fetchval(
            "SELECT count(*) FROM policy_service.outbox WHERE published_at IS NULL"
        )
        self.metrics.backlog.set(backlog)
        return len(rows)

    async def _topics_exist(self, producer: AIOKafkaProducer, topics: set[str]) -> None:
        """Refuse acks for topics the broker does not have (any more).

        A broker that lost its topics (Tansu's memory storage after a restart)
        acknowledges writes to them and drops them. Raising keeps the rows
        unpublished; the missing topics are created (the rows' own, which may
        not be the configured ones: rows written under other ``TOPIC_*`` names
        go where they were written for) and the rows are sent again.
        """
        if not await producer.client.force_metadata_update():
            raise RuntimeError("could not refresh the broker's metadata")
        missing = topics - producer.client.cluster.topics()
        if missing:
            await ensure_topics(
                self.config.bootstrap_servers, sorted(missing), self.config.partitions
            )
            raise RuntimeError(f"the broker lost topics {sorted(missing)}; recreated them")

    async def _expire(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "DELETE FROM policy_service.outbox WHERE published_at < now() - $1 * interval '1 hour'",
            self.config.retention_hours,
        )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
