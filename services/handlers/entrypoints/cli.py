"""``handlers``: execute the commands against the partners' tools, migrate the database, or
move the handlers' secrets to a new ``SECRETS_KEY``."""

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


@main.command("rewrap-keys")
@click.option(
    "--old-key-env",
    default="OLD_SECRETS_KEY",
    show_default=True,
    help="The environment variable holding the key being replaced (SECRETS_KEY holds the new one).",
)
def rewrap_keys(old_key_env: str) -> None:
    """Re-seal the vault's data keys and the last known passwords under SECRETS_KEY.

    Run it with the new key in SECRETS_KEY and the old one in OLD_SECRETS_KEY, after
    stopping the handlers (or while they run: each row is swapped only if unchanged).
    Running it again is harmless."""
    import os

    import asyncpg
    from pydantic import ValidationError

    from services.handlers.adapters.enrolments import EnrolmentStore
    from services.handlers.service_layer.keys import rewrap_keys as rewrap
    from services.infra.secrets import SecretBox, SecretError
    from services.infra.settings import SecretsSettings

    old_setting = os.environ.get(old_key_env, "")
    if not old_setting:
        raise click.UsageError(f"{old_key_env} (the old key) is not set")
    try:
        new_setting = SecretsSettings().secrets_key.get_secret_value()
    except ValidationError:
        raise click.UsageError("SECRETS_KEY (the new key) is not set") from None
    try:
        new = SecretBox.from_setting(new_setting)
        old = SecretBox.from_setting(old_setting)
    except (SecretError, ValueError) as exc:  # parse_key's messages never echo the key
        raise click.ClickException(f"bad key: {exc}") from None

    async def go() -> str:
        pool = await asyncpg.create_pool(CommonSettings().database_url, min_size=1, max_size=2)
        try:
            done = await rewrap(EnrolmentStore(pool), old, new)
        finally:
            await pool.close()
        return (
            f"re-sealed {done.rewrapped}, already under the new key {done.already}, "
            f"under neither key {done.unopenable}"
        )

    click.echo(asyncio.run(go()))
