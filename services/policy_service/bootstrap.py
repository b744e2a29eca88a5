"""Composition root: settings in, a wired aiohttp application out.

Nothing connects at import time. Every resource (the PostgreSQL pool, the
outbox relay) is opened and closed by an aiohttp ``cleanup_ctx`` generator.
Tests build the same application with their own settings.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from importlib.metadata import version
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from schemas.topics import TopicNames
from services.infra.kafka_admin import broker_reachable
from services.infra.secrets import SecretBox
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.read_model import ReadModelConfig, ReadModelConsumer
from services.policy_service.adapters.relay import OutboxRelay, RelayConfig, RelayMetrics
from services.policy_service.api.middleware import authentication, observability, problems
from services.policy_service.api.openapi import build_openapi
from services.policy_service.api.routes import ROUTES
from services.policy_service.api.views import ReadyCheck, Views
from services.policy_service.service_layer.accounts import AccountService
from services.policy_service.service_layer.handlers import PolicyService
from services.policy_service.service_layer.integrations import IntegrationService
from services.policy_service.settings import PolicyServiceSettings
from services.policy_service.ui import mount_ui

RELAY = web.AppKey("relay", OutboxRelay)
log = logging.getLogger(__name__)


def app_version() -> str:
    try:
        return version("msp-account-import")
    except Exception:  # pragma: no cover - running from a source tree
        return "0.0.0"


def build_app(settings: PolicyServiceSettings, topics: TopicNames | None = None) -> web.Application:
    topics = topics or TopicNames()
    registry = CollectorRegistry()
    db = Database(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
    )
    service = PolicyService(db, topics)
    integrations = IntegrationService(
        db,
        topics,
        SecretBox.from_setting(settings.secrets_key.get_secret_value()),
        allow_private=settings.integrations_allow_private,
    )
    ready = _readiness(db, settings)
    views = Views(
        service,
        integrations,
        AccountService(db),
        topics,
        registry,
        ready,
        build_openapi(app_version()),
    )

    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            observability(registry),
            problems,
            authentication(settings.auth_jwt_secret.get_secret_value()),
        ],
    )
    for route in ROUTES:
        app.router.add_route(route.method, route.path, getattr(views, route.view), name=route.view)
    mount_ui(app, settings)

    async def database(_: web.Application) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    app.cleanup_ctx.append(database)
    if settings.relay_enabled:
        relay = build_relay(settings, topics, registry)
        app[RELAY] = relay
        # run() returns within 2 * stop_grace of stop(); the backstop is a little later.
        app.cleanup_ctx.append(
            _background("outbox-relay", relay.run, relay.stop, 3 * relay.config.stop_grace)
        )
    if settings.results_consumer_enabled:
        read_model = ReadModelConsumer(
            ReadModelConfig(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topics=(topics.import_decisions, topics.command_results),
                group_id=settings.results_group_id,
                batch_size=settings.read_model_batch_size,
            ),
            db,
            registry,
        )
        app.cleanup_ctx.append(_background("read-model", read_model.run, read_model.stop, 5.0))
    return app


def _background(
    name: str,
    run: Callable[[], Coroutine[Any, Any, None]],
    stop: Callable[[], None],
    grace: float,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A loop of the application's lifetime: started after the pool, stopped before it
    (asked to stop, then cancelled after ``grace`` seconds)."""

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(), name=name)
        task.add_done_callback(_report_end(name))
        try:
            yield
        finally:
            stop()
            try:
                await asyncio.wait_for(task, timeout=grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return ctx


def _report_end(name: str) -> Callable[["asyncio.Task[None]"], None]:
    def report(task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("%s died", name, exc_info=task.exception())

    return report


def build_relay(
    settings: PolicyServiceSettings, topics: TopicNames, registry: CollectorRegistry
) -> OutboxRelay:
    return OutboxRelay(
        RelayConfig(
            dsn=settings.database_url,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            poll_interval=settings.relay_poll_interval_seconds,
            batch_size=settings.relay_batch_size,
            retention_hours=settings.outbox_retention_hours,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            topics=(topics.policy_events, topics.customer_events, topics.integration_events),
            partitions=topics.partitions,
        ),
        RelayMetrics(registry),
    )


def _readiness(db: Database, settings: PolicyServiceSettings) -> ReadyCheck:
    """DB and broker reachable; the broker answer is cached for two seconds."""
    cache: dict[str, float | bool] = {"at": 0.0, "ok": False}

    async def check() -> dict[str, bool]:
        db_ok = await db.ping()
        if time.monotonic() - float(cache["at"]) > 2:
            cache["ok"] = await broker_reachable(settings.kafka_bootstrap_servers, timeout=2)
            cache["at"] = time.monotonic()
        return {"database": db_ok, "broker": bool(cache["ok"])}

    return check
