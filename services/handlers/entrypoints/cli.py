"""``handlers``: execute the commands against the partners' tools, or migrate the database."""

import asyncio

import click

from services.infra.migrations import migrate as apply_migrations
from services.infra.settings import CommonSettings

MIGRATIONS = "services.handlers.adapters.migrations"
SCHEMA = "handlers"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Handlers (docs/contract.md §7)."""


@main.command()
def run() -> None:
    """Consume the command topics, call the vendors, report on command.results."""
    from aiohttp import web

    from services.handlers.entrypoints.app import build_app
    from services.handlers.settings import HandlersSettings
    from services.infra.isolated_fetch import require_codecs
    from services.infra.logging import configure_logging
    from services.infra.shutdown import arm_exit_deadline

    require_codecs()
    try:
        settings = HandlersSettings()
    except Exception as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc
    configure_logging(settings.log_level, "handlers")
    app = build_app(settings)

    async def arm_deadline(_: web.Application) -> None:
        arm_exit_deadline(settings.shutdown_timeout_seconds)

    app.on_shutdown.insert(0, arm_deadline)
    web.run_app(
        app,
        host=settings.handlers_http_host,
        port=settings.handlers_http_port,
        access_log=None,
        print=None,
        shutdown_timeout=min(3.0, settings.shutdown_timeout_seconds / 3),
    )


@main.command()
def migrate() -> None:
    """Apply pending database migrations to the `handlers` schema."""
    from services.infra.logging import configure_logging

    common = CommonSettings()
    configure_logging(common.log_level, "handlers")
    applied = asyncio.run(apply_migrations(common.database_url, SCHEMA, MIGRATIONS))
    click.echo(
        f"handlers: {len(applied)} migration(s) applied"
        + (": " + ", ".join(applied) if applied else "")
    )
