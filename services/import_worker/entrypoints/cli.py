"""``import-worker``: run the worker, migrate its database, simulate agents."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Import worker (CONTRACT.md section 3)."""


@main.command()
def run() -> None:
    """Consume discovered accounts and emit commands."""
    raise click.ClickException("not implemented yet")


@main.command()
def migrate() -> None:
    """Apply pending database migrations to the `import_worker` schema."""
    raise click.ClickException("not implemented yet")
