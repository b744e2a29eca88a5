"""``policy-service``: run the HTTP API and outbox relay, or migrate the database."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Import policy service (CONTRACT.md section 4)."""


@main.command()
def run() -> None:
    """Serve the HTTP API and run the outbox relay."""
    raise click.ClickException("not implemented yet")


@main.command()
def migrate() -> None:
    """Apply pending database migrations to the `policy_service` schema."""
    raise click.ClickException("not implemented yet")
