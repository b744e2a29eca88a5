"""The handlers' consumers: integrations projected, commands and password changes executed.

Two consumer groups:

- ``<group>-integrations`` projects ``integration.events`` (version-guarded) into
  ``handlers.integrations``; it commits after each batch is written;
- ``<group>`` consumes the six command topics and ``account.passwords``. Nothing is
  executed before the integrations projection has caught up with the end
  offsets ``integration.events`` had at start-up (a command must not fail for
  want of an integration not projected yet). Records go to the
  :class:`Scheduler` (concurrent, in order per key, bounded; fetching pauses
  while it is full) and offsets are committed every ``commit_interval`` up to
  the first unfinished record of each partition.

Each record is worked to its end: a command the handlers cannot read goes to
``commands.dlq`` (the original bytes, the five headers) at once; an outage of
PostgreSQL or the broker is waited out and the same work runs again; a record
that fails for another reason (a bug) gets three tries, then ``commands.dlq``
with reason ``processing_failed``. A vendor's failures are the executor's to
turn into results.

Two loops run beside them in every replica, each safe with several replicas (rows
claimed with ``FOR UPDATE SKIP LOCKED``): the welcome emails that wait (for an
address, or for the account's other commands) and the rotation requests that fall
due.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from pydantic import BaseModel, ValidationError

from schemas.catalog import BY_TYPE
from schemas.integrations import IntegrationConfigured, IntegrationRemoved
from schemas.passwords import PASSWORD_CHANGED
from schemas.topics import TopicNames
from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.connectors.registry import Connectors
from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.adapters.http import RetryPolicy
from services.handlers.adapters.mail import SmtpMailer
from services.handlers.adapters.net import http_session
from services.handlers.adapters.outputs import Outputs
from services.handlers.adapters.store import Store
from services.handlers.domain.errors import VendorRejected
from services.handlers.metrics import HandlerMetrics
from services.handlers.service_layer import rotation
from services.handlers.service_layer.executor import Executor
from services.handlers.service_layer.password_changes import PasswordChanges, Unopenable
from services.handlers.service_layer.ports import Mailer
from services.handlers.service_layer.reporting import Integrations, Reporter
from services.handlers.service_layer.scheduler import Scheduler, Work
from services.handlers.service_layer.welcome import Welcomes, WelcomeTiming
from services.handlers.settings import HandlersSettings
from services.infra.catch_up import CatchUp, end_offsets, follow_commits
from services.infra.failures import is_transient
from services.infra.kafka_admin import ensure_topics
from services.infra.rejections import Reason, Rejected, classify
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done
from services.infra.secrets import SecretBox
from services.infra.shutdown import stop_consumer, stop_producer

log = logging.getLogger(__name__)

#: The command channels executed here: all six.
COMMAND_CHANNELS = (
    "commands_psa",
    "commands_documentation",
    "commands_vault",
    "commands_rotation",
    "commands_notification",
    "commands_identity",
)
BUG_ATTEMPTS = 3


class _Type(BaseModel):
    type: str


def read(value: bytes | None, channel: str) -> Any:
    """The event of a record of ``channel``, or :class:`Rejected`."""
    if value is None:
        return Rejected(Reason.INVALID_JSON, "the record has no value")
    try:
        kind = _Type.model_validate_json(value).type
    except ValidationError as exc:
        return classify(exc)
    spec = BY_TYPE.get(kind)
    if spec is None or spec.channel != channel:
        return Rejected(Reason.INVALID_ENVELOPE, f"type {kind!r} does not travel on {channel}")
    try:
        return spec.envelope_model().model_validate_json(value)
    except ValidationError as exc:
        return classify(exc)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: "HandlersRuntime") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class HandlersRuntime:
    """Owns the pool, the producer, the HTTP session and both consumers."""

    def __init__(self, settings: HandlersSettings, topics: TopicNames, metrics: HandlerMetrics):
        self.settings = settings
        self.topics = topics
        self.metrics = metrics
        self.box = SecretBox.from_setting(settings.secrets_key.get_secret_value())
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outputs: Outputs | None = None
        self.session: aiohttp.ClientSession | None = None
        self.catch_up: CatchUp | None = None
        self.scheduler: Scheduler | None = None
        self.executor: Executor | None = None
        self.changes: PasswordChanges | None = None
        self.welcomes: Welcomes | None = None
        self.enrolments: EnrolmentStore | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.stop_signal = StopSignal(event=self._stopping)
        self._tasks: list[asyncio.Task[None]] = []
        self.running = False
        self._channel_of = {topics.channel(c): c for c in COMMAND_CHANNELS}
        self._channel_of[topics.account_passwords] = "account_passwords"

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        wanted = [
            *(self.topics.channel(c) for c in COMMAND_CHANNELS),
            self.topics.account_passwords,
            self.topics.integration_events,
            self.topics.command_results,
            self.topics.commands_dlq,
            self.topics.agent_requests,
        ]
        await self._until_ok(
            "create topics",
            lambda: ensure_topics(s.kafka_bootstrap_servers, wanted, s.topic_partitions),
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
            enable_idempotence=False,  # not on Tansu; a re-sent result has the same id
            linger_ms=2,
            client_id="handlers",
        )
        await self._until_ok("start the producer", self.producer.start)
        self.outputs = Outputs(self.producer, self.topics)
        self.session = http_session(allow_private=s.integrations_allow_private)
        policy = RetryPolicy(
            give_up_after=s.vendor_give_up_seconds,
            maximum=s.vendor_backoff_max_seconds,
            request_timeout=s.vendor_request_timeout_seconds,
        )
        store = Store(self.pool)
        self.enrolments = EnrolmentStore(self.pool)
        connectors = Connectors(
            self.session,
            self.pool,
            policy,
            self.metrics.vendor,
            paced=s.vendor_pacing,
            window_scale=s.vendor_window_scale,
        )
        integrations = Integrations(store, self.box)
        reporter = Reporter(
            self.outputs.result, source=s.handlers_source, on_result=self.metrics.result
        )
        self.welcomes = Welcomes(
            store,
            self.enrolments,
            integrations,
            reporter,
            self._mailer_for,
            WelcomeTiming(
                settle=timedelta(seconds=s.welcome_settle_seconds),
                wait_limit=timedelta(seconds=s.welcome_wait_seconds),
                give_up=timedelta(seconds=s.vendor_give_up_seconds),
                backoff_cap=timedelta(seconds=s.vendor_backoff_max_seconds),
                # a claimed look outlasts one delivery attempt with room to spare
                lease=timedelta(
                    seconds=max(
                        300.0, 3 * (s.smtp_attempt_seconds + s.vendor_request_timeout_seconds)
                    )
                ),
            ),
        )
        self.executor = Executor(
            store,
            self.enrolments,
            connectors,
            integrations,
            reporter,
            self.welcomes,
            self.box,
            rotation_interval_days=s.rotation_interval_days,
        )
        self.changes = PasswordChanges(
            store, self.enrolments, connectors, integrations, reporter, self.box
        )
        self.scheduler = Scheduler(self._work, s.max_in_flight)
        targets = await self._until_ok(
            "read the end offsets of integration.events",
            lambda: end_offsets(s.kafka_bootstrap_servers, [self.topics.integration_events]),
        )
        self.catch_up = CatchUp(targets)
        self._spawn(self._project_integrations(store), "integrations")
        self._spawn(self._follow(), "integrations-commits")
        self._spawn(self._consume(), "commands")
        self._spawn(self._every(s.welcome_check_seconds, self._welcomes), "welcome-emails")
        self._spawn(self._every(s.rotation_check_seconds, self._rotations), "rotations")
        self.running = True

    async def stop(self) -> None:
        """Stop fetching, give the work in flight a moment, commit what finished, close."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.producer is not None:
            await stop_producer(self.producer, timeout=2.0)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.close(), timeout=2)
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self.pool.terminate()

    def _spawn(self, work: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work, name=f"handlers-{name}")
        task.add_done_callback(self._ended)
        self._tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.running = False
            log.critical("%s died", task.get_name(), exc_info=task.exception())

    async def _until_ok(self, what: str, action: Any) -> Any:
        return await retry_until_done(
            action, what=what, stop=self.stop_signal, maximum=10.0, logger=log
        )

    def _mailer_for(self, config: IntegrationConfig) -> Mailer:
        s = self.settings
        attempt = RetryPolicy(
            give_up_after=s.smtp_attempt_seconds,
            maximum=min(s.vendor_backoff_max_seconds, s.smtp_attempt_seconds),
            request_timeout=s.vendor_request_timeout_seconds,
        )
        try:
            return SmtpMailer(config, attempt, allow_private=s.integrations_allow_private)
        except ValueError as exc:
            raise VendorRejected(f"the smtp integration is not usable: {exc}") from None

    # -- the loops beside the consumers -----------------------------------------------

    async def _every(self, seconds: float, step: Any) -> None:
        """Run ``step`` every ``seconds`` once the integrations are projected; an outage
        is waited out (the next round tries again), a bug logged and tried next round."""
        assert self.catch_up is not None
        await self.catch_up.caught_up.wait()
        while not self._stopping.is_set():
            busy = False
            try:
                busy = await step()
            except Exception as exc:
                if is_transient(exc):
                    log.warning("%s: waiting out an outage: %s", step.__name__, exc)
                else:
                    log.exception("%s failed; tried again next round", step.__name__)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _welcomes(self) -> bool:
        assert self.welcomes is not None
        claimed = await self.welcomes.sweep()
        self.metrics.welcome_waiting.set(claimed)
        return claimed > 0

    async def _rotations(self) -> bool:
        assert self.enrolments is not None
        assert self.outputs is not None
        s = self.settings
        requested = await rotation.request_due(
            self.enrolments,
            self.outputs.agent_request,
            source=s.handlers_source,
            resend_after=timedelta(hours=s.rotation_resend_hours),
            on_request=self.metrics.rotation_request,
        )
        return requested > 0

    async def readiness(self) -> tuple[dict[str, bool], str | None]:
        db = False
        if self.pool is not None:
            with contextlib.suppress(Exception):
                db = await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2) == 1
        caught_up = self.catch_up is not None and self.catch_up.caught_up.is_set()
        checks = {"database": db, "running": self.running, "integrations_caught_up": caught_up}
        reason = None
        if self.catch_up is None:
            reason = "starting"
        elif not caught_up:
            reason = f"the integrations are catching up: {self.catch_up.progress()}"
        elif not db:
            reason = "the database is unavailable"
        elif not self.running:
            reason = "a consumer of the handlers stopped; see the log"
        return checks, reason

    # -- integration.events -----------------------------------------------------------

    async def _follow(self) -> None:
        catch_up = self.catch_up
        assert catch_up is not None
        group = f"{self.settings.handlers_group_id}-integrations"
        bootstrap = self.settings.kafka_bootstrap_servers
        await self._until_ok(
            "follow the integrations' committed offsets",
            lambda: follow_commits(catch_up, bootstrap, group),
        )

    async def _project_integrations(self, store: Store) -> None:
        await self._until_ok("project integration.events", lambda: self._integrations(store))

    async def _integrations(self, store: Store) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            self.topics.integration_events,
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=f"{s.handlers_group_id}-integrations",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            client_id="handlers-integrations",
        )
        try:
            await consumer.start()
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, records in batch.items():
                    for record in records:
                        await self._project_one(store, record.value)
                        assert self.catch_up is not None
                        self.catch_up.projected(tp.topic, tp.partition, record.offset)
                if batch:
                    await consumer.commit()
        finally:
            await stop_consumer(consumer, timeout=2.0)

    async def _project_one(self, store: Store, value: bytes | None) -> None:
        event = read(value, "integration_events")
        if isinstance(event, Rejected):
            log.error("unreadable integration event skipped: %s", event.detail)
            self.metrics.integrations.labels("unreadable").inc()
            return
        state = event.data
        assert isinstance(state, IntegrationConfigured | IntegrationRemoved)
        applied = await retry_until_done(
            lambda: store.apply_integration(state),
            what="project an integration event",
            stop=self.stop_signal,
            retry_on=is_transient,
            logger=log,
        )
        self.metrics.integrations.labels("applied" if applied else "stale").inc()

    # -- commands and password changes ----------------------------------------------------

    async def _consume(self) -> None:
        assert self.catch_up is not None
        await self.catch_up.caught_up.wait()
        await self._until_ok("consume the commands", self._command_session)

    async def _command_session(self) -> None:
        s = self.settings
        scheduler = self.scheduler
        assert scheduler is not None
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.handlers_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=s.rebalance_timeout_ms,
            max_partition_fetch_bytes=1_048_576,
            client_id="handlers-commands",
        )
        consumer.subscribe(list(self._channel_of), listener=_Rebalance(self))
        self.consumer = consumer
        last_commit = time.monotonic()
        paused = False
        try:
            await consumer.start()
            while not self._stopping.is_set():
                if scheduler.full != paused:
                    paused = scheduler.full
                    (consumer.pause if paused else consumer.resume)(*consumer.assignment())
                try:
                    batch = await consumer.getmany(
                        timeout_ms=200, max_records=max(1, scheduler.capacity - scheduler.held)
                    )
                except ConsumerStoppedError:
                    break
                for tp, records in batch.items():
                    for record in records:
                        key = (
                            record.key.decode("utf-8", "replace")
                            if record.key
                            else f"@{record.offset}"
                        )
                        scheduler.submit(Work(tp, record.offset, (tp.topic, key), record))
                self.metrics.held.set(scheduler.held)
                if time.monotonic() - last_commit >= s.commit_interval_seconds:
                    await self._commit(consumer)
                    last_commit = time.monotonic()
        finally:
            with contextlib.suppress(KafkaError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._commit(consumer), timeout=2)
            self.consumer = None
            await stop_consumer(consumer, timeout=2.0)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        assert self.scheduler is not None
        offsets = self.scheduler.committable()
        mine = consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in mine}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError:
            log.warning(
                "committing finished offsets failed; retried at the next round", exc_info=True
            )
            return
        self.scheduler.committed(offsets)

    async def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Before partitions go: commit what finished there, give the rest up."""
        if self.scheduler is None or self.consumer is None:
            return
        offsets = {tp: o for tp, o in self.scheduler.committable().items() if tp in partitions}
        if offsets:
            with contextlib.suppress(KafkaError):
                await self.consumer.commit(offsets)
        await self.scheduler.revoke(partitions)

    async def _work(self, work: Work) -> None:
        """One record, to its end (see the module docstring)."""
        record = work.payload
        channel = self._channel_of[work.tp.topic]
        bugs = 0

        async def attempt() -> None:
            nonlocal bugs
            try:
                await self._execute(record, channel)
            except Exception as exc:
                if is_transient(exc):
                    raise
                bugs += 1
                if bugs >= BUG_ATTEMPTS:
                    log.error("dead-lettering a record that fails on its own", exc_info=exc)
                    await self._dead_letter(
                        record,
                        Rejected(
                            Reason.PROCESSING_FAILED,
                            f"processing failed: {type(exc).__name__}: {exc}",
                        ),
                    )
                    return
                raise

        def failed(exc: BaseException) -> None:
            self.metrics.failures.labels(type(exc).__name__).inc()

        with contextlib.suppress(ShutdownRequested):
            await retry_until_done(
                attempt,
                what="execute a command",
                stop=self.stop_signal,
                on_failure=failed,
                maximum=self.settings.vendor_backoff_max_seconds,
                logger=log,
            )

    async def _execute(self, record: Any, channel: str) -> None:
        assert self.executor is not None
        assert self.changes is not None
        event = read(record.value, channel)
        if isinstance(event, Rejected):
            await self._dead_letter(record, event)
            return
        if event.type == PASSWORD_CHANGED:
            try:
                result = await self.changes.apply(event)
            except Unopenable as exc:
                await self._dead_letter(record, Rejected(Reason.INVALID_DATA, str(exc)))
                result = "unopenable"
            self.metrics.password_changes.labels(result).inc()
            return
        await self.executor.command(event)

    async def _dead_letter(self, record: Any, why: Rejected) -> None:
        assert self.outputs is not None
        await self.outputs.dead_letter(record, why)
        self.metrics.dead_letters.labels(why.reason.value).inc()
