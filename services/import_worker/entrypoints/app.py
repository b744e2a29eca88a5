"""Composition root of the import worker: a Faust app wired from settings.

Faust is the runtime: CLI, lifecycle and signals, the web server for
``/healthz``, ``/readyz`` and ``/metrics``, and two agents (concurrency 1)
that project ``policy.events`` and ``customer.events`` into PostgreSQL. The
hot path is :class:`DiscoveryConsumer`, a batched aiokafka consumer started
as a service of the app once the database pool and producer are open.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import faust
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.topics import TopicNames
from services.import_worker.adapters.bus_events import parse_state
from services.import_worker.adapters.ledger import PgLedger
from services.import_worker.adapters.projection import Projection
from services.import_worker.adapters.publisher import KafkaPublisher
from services.import_worker.entrypoints.hot_path import DiscoveryConsumer
from services.import_worker.metrics import WorkerMetrics
from services.import_worker.service_layer.engine import BatchEngine, EngineConfig
from services.import_worker.settings import WorkerSettings
from services.infra.failures import is_transient
from services.infra.kafka_admin import ensure_topics

log = logging.getLogger(__name__)


class WorkerRuntime(mode.Service):
    """Opens the pool and producer, creates topics, then starts the hot path."""

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
        self.ready = asyncio.Event()

    def all_topics(self) -> list[str]:
        return [*self.topics.all_topics(), self.settings.retry_topic]

    async def on_start(self) -> None:
        s = self.settings
        await self._until_ok(
            "create topics",
            lambda: ensure_topics(s.kafka_bootstrap_servers, self.all_topics(), s.topic_partitions),
        )
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
            linger_ms=5,
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
            loop=self.loop,
            beacon=self.beacon,
        )
        await self.add_runtime_dependency(self.hot_path)
        self.ready.set()

    async def on_stop(self) -> None:
        if self.hot_path is not None:
            await self.hot_path.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

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

    async def _until_ok(self, what: str, action: Any) -> Any:
        delay = 0.2
        while True:
            try:
                return await action()
            except Exception:
                if self.should_stop:
                    raise
                log.warning("could not %s; retrying in %.1fs", what, delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.failure_backoff_max_seconds)

    async def project(self, entity: str, channel: str, value: bytes | None) -> None:
        """Apply one policy/customer event; retried until the database takes it."""
        await self.ready.wait()
        state = parse_state(value, channel)
        if state is None:
            log.error("unreadable %s event skipped", entity)
            self.metrics.projected.labels(entity, "unreadable").inc()
            return
        projection = Projection(self._pool())
        delay = 0.2
        while True:
            try:
                if entity == "policy":
                    applied = await projection.apply_policy(state)  # type: ignore[arg-type]
                else:
                    applied = await projection.apply_customer(state)  # type: ignore[arg-type]
                self.metrics.projected.labels(entity, "applied" if applied else "stale").inc()
                return
            except Exception as exc:
                if not is_transient(exc):
                    # Not an outage: this event can never be written. Waiting on it would
                    # hold back every later policy or customer change; later full-state
                    # events of the same aggregate replace it.
                    log.error("%s event refused by the database; skipped", entity, exc_info=True)
                    self.metrics.projected.labels(entity, "refused").inc()
                    return
                log.warning("projection write failed; retrying", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.failure_backoff_max_seconds)

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the database pool is not open")
        return self.pool

    async def readiness(self) -> dict[str, bool]:
        db = False
        if self.pool is not None:
            try:
                db = await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2) == 1
            except Exception:
                db = False
        hot = self.hot_path is not None and self.hot_path.healthy
        return {"database": db, "hot_path": hot}


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
        f"{settings.worker_group_id}-projections",
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
        async for value in stream:
            await runtime.project("policy", "policy_events", value)
            yield None

    @app.agent(customer_topic, concurrency=1)
    async def project_customers(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for value in stream:
            await runtime.project("customer", "customer_events", value)
            yield None

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks = await runtime.readiness()
        ok = all(checks.values())
        return web.json(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
        )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0]
        )

    return app
