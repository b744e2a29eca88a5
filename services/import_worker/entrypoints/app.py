"""Composition root of the import worker: a Faust app wired from settings.

Faust is the runtime: CLI, lifecycle and signals, the web server for
``/healthz``, ``/readyz`` and ``/metrics``, and two agents (concurrency 1)
that project ``policy.events`` and ``customer.events`` into PostgreSQL. The
hot path is :class:`DiscoveryConsumer`, a batched aiokafka consumer started
as a service of the app once the database pool and producer are open.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import faust
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.policy import PolicyDeleted, PolicyState
from schemas.topics import TopicNames
from services.import_worker.adapters.bus_events import parse_state
from services.import_worker.adapters.ledger import PgLedger
from services.import_worker.adapters.projection import Projection
from services.import_worker.adapters.publisher import KafkaPublisher
from services.import_worker.entrypoints.hot_path import DiscoveryConsumer
from services.import_worker.metrics import WorkerMetrics
from services.import_worker.service_layer.engine import BatchEngine, EngineConfig
from services.import_worker.settings import WorkerSettings
from services.infra.catch_up import CatchUp, end_offsets, follow_commits
from services.infra.failures import is_outage
from services.infra.heap import settle_heap
from services.infra.kafka_admin import ensure_topics
from services.infra.retry import StopSignal, retry_until_done
from services.infra.shutdown import stop_producer

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime(mode.Service):
    """Opens the pool and producer, creates topics, then starts the hot path.

    The hot path decides nothing until the projection has caught up with the
    policy and customer topics as they were at start-up (:class:`CatchUp`).
    """

    def __init__(
        self, settings: WorkerSettings, topics: TopicNames, metrics: WorkerMetrics, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.topics = topics
        self.metrics = metrics
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.hot_path: DiscoveryConsumer | None = None
        self.catch_up: CatchUp | None = None
        self.ready = asyncio.Event()
        self.stopping = StopSignal(lambda: self.should_stop)
        # A projection write is waited on until it lands: an event is never skipped
        # because of an outage. Faust cancels the agent on shutdown (not acked then).
        self._projection_waits = StopSignal()

    def all_topics(self) -> list[str]:
        return [*self.topics.all_topics(), self.settings.retry_topic]

    @property
    def projection_group(self) -> str:
        return projection_group(self.settings)

    async def on_start(self) -> None:
        s = self.settings
        await self._until_ok(
            "create topics",
            lambda: ensure_topics(s.kafka_bootstrap_servers, self.all_topics(), s.topic_partitions),
        )
        projected = [self.topics.policy_events, self.topics.customer_events]
        targets = await self._until_ok(
            "read the end offsets of the policy and customer topics",
            lambda: end_offsets(s.kafka_bootstrap_servers, projected),
        )
        self.catch_up = CatchUp(targets)
        if not self.catch_up.caught_up.is_set():
            log.info("waiting for the projection to catch up: %s", self.catch_up.progress())
            self.add_future(self._follow_commits(self.catch_up))
        self.pool = await self._until_ok(
            "open the database pool",
            lambda: asyncpg.create_pool(
                s.database_url,
                min_size=s.db_pool_min_size,
                max_size=s.db_pool_max_size,
                command_timeout=30,
            ),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=False,  # not on Tansu; duplicates carry the same id
            # The publisher hands over whole batches (one per partition): waiting for
            # more would only delay them (5 ms cost ~3 ms per batch at 1,000 events/s).
            linger_ms=0,
            max_batch_size=1_048_576,
            max_request_size=4_194_304,
            client_id="import-worker",
        )
        await self._until_ok("start the producer", self.producer.start)
        engine = BatchEngine(
            EngineConfig(
                topics=self.topics,
                retry_topic=s.retry_topic,
                retry_delays=s.retry_delays_seconds,
                source=s.worker_source,
                imported_cache_size=s.imported_cache_size,
            ),
            Projection(self.pool),
            PgLedger(self.pool),
            KafkaPublisher(self.producer),
        )
        self.hot_path = DiscoveryConsumer(
            consumer_factory=self._consumer,
            engine=engine,
            metrics=self.metrics,
            topics=[self.topics.account_discovered, s.retry_topic],
            retry_topic=s.retry_topic,
            max_records=s.batch_max_records,
            backoff_max=s.failure_backoff_max_seconds,
            gate=self.catch_up.caught_up,
            loop=self.loop,
            beacon=self.beacon,
        )
        await self.add_runtime_dependency(self.hot_path)
        settle_heap()  # everything opened: the rest of the heap lives as long as we do
        self.ready.set()

    async def _follow_commits(self, catch_up: CatchUp) -> None:
        await self._until_ok(
            "follow the projection's committed offsets",
            lambda: follow_commits(
                catch_up, self.settings.kafka_bootstrap_servers, self.projection_group
            ),
        )

    async def on_stop(self) -> None:
        """Hot path, producer, pool: each step bounded, none skipped if one before failed."""
        try:
            if self.hot_path is not None:
                await self.hot_path.stop()
        finally:
            if self.producer is not None:
                # A batch still unacknowledged belongs to a batch of records that is
                # not committed: it is given up, and redone (same ids) after a restart.
                await stop_producer(self.producer, timeout=2.0)
            if self.pool is not None:
                try:
                    await asyncio.wait_for(self.pool.close(), timeout=2.0)
                except (TimeoutError, OSError, asyncpg.PostgresError):
                    self.pool.terminate()

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.worker_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=s.rebalance_timeout_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1_048_576,
            client_id="import-worker-hot-path",
        )

    async def _until_ok(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Start-up steps wait for their dependency; a shutdown meanwhile ends the wait."""
        return await retry_until_done(
            action,
            what=what,
            stop=self.stopping,
            maximum=self.settings.failure_backoff_max_seconds,
            logger=log,
        )

    async def project(
        self, entity: str, channel: str, value: bytes | None, position: tuple[str, int, int]
    ) -> None:
        """Apply one policy/customer event; retried until the database takes it.

        An outage is waited out (the event is never skipped because of one). An
        event the database refuses for another reason can never be written:
        waiting on it would hold back every later policy or customer change, and
        later full-state events of the same aggregate replace it, so it is
        skipped and counted.
        """
        await self.ready.wait()
        state = parse_state(value, channel)
        if state is None:
            log.error("unreadable %s event skipped", entity)
            self.metrics.projected.labels(entity, "unreadable").inc()
        else:
            projection = Projection(self._pool())

            async def apply() -> bool:
                if isinstance(state, PolicyState | PolicyDeleted):
                    return await projection.apply_policy(state)
                return await projection.apply_customer(state)

            try:
                applied = await retry_until_done(
                    apply,
                    what=f"project a {entity} event",
                    stop=self._projection_waits,
                    retry_on=is_outage,
                    maximum=self.settings.failure_backoff_max_seconds,
                    logger=log,
                )
                self.metrics.projected.labels(entity, "applied" if applied else "stale").inc()
            except Exception:
                log.error("%s event refused by the database; skipped", entity, exc_info=True)
                self.metrics.projected.labels(entity, "refused").inc()
        if self.catch_up is not None:
            self.catch_up.projected(*position)

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the database pool is not open")
        return self.pool

    async def readiness(self) -> tuple[dict[str, bool], str | None]:
        """The checks of ``/readyz``, and why it is not ready (None when it is)."""
        db = False
        if self.pool is not None:
            try:
                db = await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2) == 1
            except Exception:
                db = False
        hot = self.hot_path is not None and self.hot_path.healthy
        caught_up = self.catch_up is not None and self.catch_up.caught_up.is_set()
        checks = {"database": db, "hot_path": hot, "projection_caught_up": caught_up}
        reason = None
        if self.catch_up is None:
            reason = "starting"
        elif not caught_up:
            reason = f"the projection is catching up: {self.catch_up.progress()}"
        elif not db:
            reason = "the database is unavailable"
        elif not hot:
            reason = "the hot path is not running (waiting for the broker or the database)"
        undecodable = self.hot_path.undecodable() if self.hot_path is not None else []
        checks["record_batches_decodable"] = not undecodable
        if undecodable and reason is None:
            reason = "paused on undecodable record batches: " + "; ".join(undecodable)
        return checks, reason


def projection_group(settings: WorkerSettings) -> str:
    """The consumer group of the Faust projection agents (the Faust app id)."""
    return f"{settings.worker_group_id}-projections"


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def logging_config(level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
                "static_fields": {"service": "import-worker"},
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }


def create_app(settings: WorkerSettings, topics: TopicNames | None = None) -> faust.App:
    topics = topics or TopicNames()
    metrics = WorkerMetrics()
    app = faust.App(
        projection_group(settings),
        broker=_broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_port=settings.worker_http_port,
        web_bind=settings.worker_http_host,
        web_in_thread=False,
        broker_session_timeout=settings.faust_session_timeout_seconds,
        broker_heartbeat_interval=settings.faust_heartbeat_interval_seconds,
        broker_rebalance_timeout=settings.faust_rebalance_timeout_seconds,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        producer_acks=-1,
        logging_config=logging_config(settings.log_level),
    )
    runtime = WorkerRuntime(settings, topics, metrics)
    app.service(runtime)  # type: ignore[arg-type]  # an instance works: started after agents
    app.import_worker_runtime = runtime  # type: ignore[attr-defined]

    policy_topic = app.topic(
        topics.policy_events,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    customer_topic = app.topic(
        topics.customer_events,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(policy_topic, concurrency=1)
    async def project_policies(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            msg = event.message
            await runtime.project(
                "policy", "policy_events", event.value, (msg.topic, msg.partition, msg.offset)
            )
            yield None

    @app.agent(customer_topic, concurrency=1)
    async def project_customers(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            msg = event.message
            await runtime.project(
                "customer", "customer_events", event.value, (msg.topic, msg.partition, msg.offset)
            )
            yield None

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks, reason = await runtime.readiness()
        body: dict[str, Any] = {"status": "unavailable" if reason else "ok", "checks": checks}
        if reason:
            body["reason"] = reason
        return web.json(body, status=503 if reason else 200)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0]
        )

    return app
