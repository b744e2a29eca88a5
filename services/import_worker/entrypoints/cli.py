"""``import-worker``: run the worker, migrate its database, simulate discovery agents."""

import asyncio
from pathlib import Path

import click

from services.infra.migrations import migrate as apply_migrations
from services.infra.settings import CommonSettings

MIGRATIONS = "services.import_worker.adapters.migrations"
SCHEMA = "import_worker"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Import worker (docs/contract.md §3)."""


@main.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: WORKER_PROCESSES, 1); one per core.",
)
def run(processes: int | None) -> None:
    """Consume discovered accounts and emit commands (a Faust worker per process)."""
    import faust

    from services.import_worker.entrypoints.app import create_app
    from services.import_worker.settings import WorkerSettings
    from services.infra.isolated_fetch import require_codecs
    from services.infra.shutdown import arm_exit_deadline

    require_codecs()

    settings = WorkerSettings()
    count = processes or settings.worker_processes
    if count > 1:
        from services.import_worker.entrypoints.processes import Supervisor
        from services.infra.logging import configure_logging

        configure_logging(settings.log_level, "import-worker")
        supervisor = Supervisor(count, base_port=settings.worker_http_port)
        raise SystemExit(supervisor.run())

    class Worker(faust.Worker):
        """mode's stop has no overall deadline: with the broker down, Faust's final
        commit and the consumer thread's shutdown wait on it (for ever / 60 s)."""

        async def stop(self) -> None:
            arm_exit_deadline(settings.shutdown_timeout_seconds)
            await super().stop()

    app = create_app(settings)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


@main.command()
def migrate() -> None:
    """Apply pending database migrations to the `import_worker` schema."""
    common = CommonSettings()
    applied = asyncio.run(apply_migrations(common.database_url, SCHEMA, MIGRATIONS))
    click.echo(
        f"import_worker: {len(applied)} migration(s) applied"
        + (": " + ", ".join(applied) if applied else "")
    )


@main.command()
@click.option("--partner", "partner_id", required=True, help="The partner (MSP) id.")
@click.option(
    "--customer",
    "customers",
    multiple=True,
    required=True,
    type=click.UUID,
    help="A customer id (repeat for several).",
)
@click.option("--count", default=1000, show_default=True, help="Events to send.")
@click.option(
    "--rediscover",
    default=0.9,
    show_default=True,
    help="Share of events that re-report an account already reported.",
)
@click.option("--admin-share", default=0.1, show_default=True, help="Share of administrators.")
@click.option("--rate", type=float, default=None, help="Events per second (default: flat out).")
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable runs.")
def simulate(
    partner_id: str,
    customers: tuple[object, ...],
    count: int,
    rediscover: float,
    admin_share: float,
    rate: float | None,
    seed: int | None,
) -> None:
    """Publish realistic account.discovered events, as discovery agents would."""
    import uuid

    from schemas.topics import TopicNames
    from services.import_worker.simulate import AgentSimulator, publish

    common = CommonSettings()
    sim = AgentSimulator(
        partner_id,
        [uuid.UUID(str(c)) for c in customers],
        rediscovery_rate=rediscover,
        admin_share=admin_share,
        seed=seed,
    )
    sent = asyncio.run(
        publish(
            common.kafka_bootstrap_servers,
            TopicNames().account_discovered,
            sim.stream(count),
            rate=rate,
        )
    )
    click.echo(f"sent {sent} account.discovered events ({len(sim.seen)} distinct accounts)")


@main.command("simulate-password-change")
@click.option("--account-key", "keys", multiple=True, help="An account key (repeat for several).")
@click.option(
    "--customer",
    type=click.UUID,
    default=None,
    help="Change the latest accounts the worker imported for this customer (needs DATABASE_URL).",
)
@click.option("--count", default=1, show_default=True, help="Accounts of --customer to change.")
@click.option(
    "--changed-by",
    type=click.Choice(["agent", "rotation", "self_service", "technician"]),
    default="agent",
    show_default=True,
)
@click.option(
    "--secrets-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".data/secrets_key"),
    show_default=True,
    help="Where the dev stack keeps SECRETS_KEY, read when SECRETS_KEY is not set.",
)
def simulate_password_change(
    keys: tuple[str, ...],
    customer: object | None,
    count: int,
    changed_by: str,
    secrets_key_file: Path,
) -> None:
    """Publish account.password.changed events (a random password each, sealed under
    SECRETS_KEY, never printed), as an agent that changed them would."""
    import os
    import uuid

    from schemas.passwords import ChangedBy
    from schemas.topics import TopicNames
    from services.import_worker.settings import WorkerSettings
    from services.import_worker.simulate_passwords import (
        Account,
        imported_accounts,
        publish_changes,
    )
    from services.infra.secrets import SecretBox

    key_setting = os.environ.get("SECRETS_KEY") or (
        secrets_key_file.read_text().strip() if secrets_key_file.exists() else ""
    )
    if not key_setting:
        raise click.UsageError(
            f"set SECRETS_KEY (or run make run, which writes {secrets_key_file})"
        )
    box = SecretBox.from_setting(key_setting)
    accounts: list[Account] = []
    for key in keys:
        parts = key.split(":")
        if len(parts) < 4:
            raise click.BadParameter(f"{key!r} is not <partner>:<customer>:<directory>:<id>")
        accounts.append(Account(key, uuid.UUID(parts[1])))
    if customer is not None:
        settings = WorkerSettings()
        found = asyncio.run(
            imported_accounts(settings.database_url, uuid.UUID(str(customer)), count)
        )
        if not found:
            raise click.UsageError(f"the worker has imported no account of customer {customer}")
        accounts += found
    if not accounts:
        raise click.UsageError("give --account-key or --customer")
    sent = asyncio.run(
        publish_changes(
            CommonSettings().kafka_bootstrap_servers,
            TopicNames().account_passwords,
            box,
            accounts,
            ChangedBy(changed_by),
        )
    )
    for account in accounts:
        click.echo(f"password changed: {account.key}")
    click.echo(f"sent {sent} account.password.changed events")


if __name__ == "__main__":  # the worker processes of ``run --processes N``
    main()
