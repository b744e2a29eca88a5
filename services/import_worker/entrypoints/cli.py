"""``import-worker``: run the worker, migrate its database, simulate discovery agents."""

import asyncio

import click

from services.infra.migrations import migrate as apply_migrations
from services.infra.settings import CommonSettings

MIGRATIONS = "services.import_worker.adapters.migrations"
SCHEMA = "import_worker"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Import worker (docs/contract.md §3)."""


@main.command()
def run() -> None:
    """Consume discovered accounts and emit commands (a Faust worker)."""
    import faust

    from services.import_worker.entrypoints.app import create_app
    from services.import_worker.settings import WorkerSettings
    from services.infra.isolated_fetch import require_codecs
    from services.infra.shutdown import arm_exit_deadline

    require_codecs()

    settings = WorkerSettings()

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
