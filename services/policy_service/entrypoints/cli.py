"""``policy-service``: serve the API (with the outbox relay), run the relay alone, migrate."""

import asyncio
import contextlib
import signal

import click
import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry, start_http_server

from schemas.topics import TopicNames
from services.infra.heap import settle_heap
from services.infra.logging import configure_logging
from services.infra.migrations import migrate as apply_migrations
from services.infra.settings import CommonSettings
from services.infra.shutdown import arm_exit_deadline
from services.policy_service.settings import PolicyServiceSettings

MIGRATIONS = "services.policy_service.adapters.migrations"
SCHEMA = "policy_service"


def _settings() -> PolicyServiceSettings:
    try:
        return PolicyServiceSettings()
    except Exception as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Import policy service (docs/contract.md §4)."""


@main.command()
def run() -> None:
    """Serve the HTTP API (and, unless RELAY_ENABLED=false, the outbox relay)."""
    from services.policy_service.bootstrap import build_app

    settings = _settings()
    configure_logging(settings.log_level, "policy-service")
    app = build_app(settings)

    async def arm_deadline(_: web.Application) -> None:
        # on_shutdown runs as soon as the signal stopped the listener.
        arm_exit_deadline(settings.shutdown_timeout_seconds)

    async def freeze_start_up_heap(_: web.Application) -> None:
        settle_heap()  # the last start-up step: the pool, relay and routes exist

    app.on_shutdown.insert(0, arm_deadline)
    app.on_startup.append(freeze_start_up_heap)
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        access_log=None,
        print=None,
        # In-flight requests get this long; then the relay and the pool close.
        shutdown_timeout=min(3.0, settings.shutdown_timeout_seconds / 3),
        loop=uvloop.new_event_loop(),  # libuv's sockets: the API's time is mostly I/O
    )


@main.command()
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
def relay(metrics_port: int | None) -> None:
    """Run only the outbox relay (the API replicas then set RELAY_ENABLED=false)."""
    from services.policy_service.bootstrap import build_relay

    settings = _settings()
    configure_logging(settings.log_level, "policy-service-relay")
    registry = CollectorRegistry()
    if metrics_port:
        start_http_server(metrics_port, registry=registry)
    worker = build_relay(settings, TopicNames(), registry)

    async def main_loop() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            arm_exit_deadline(settings.shutdown_timeout_seconds)
            worker.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await worker.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_loop())


@main.command()
def migrate() -> None:
    """Apply pending database migrations to the `policy_service` schema."""
    common = CommonSettings()  # the JWT secret is not needed to migrate
    configure_logging(common.log_level, "policy-service")
    applied = asyncio.run(apply_migrations(common.database_url, SCHEMA, MIGRATIONS))
    click.echo(
        f"policy_service: {len(applied)} migration(s) applied"
        + (": " + ", ".join(applied) if applied else "")
    )
