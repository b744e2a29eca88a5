"""``msp-import-dev``: the Docker-free local stack (``make run``) and dev tokens."""

import asyncio
import os
import sys
import time
from pathlib import Path

import click

from services.infra.devstack.demo import with_ui_link
from services.infra.devstack.stack import StackConfig, serve
from services.infra.devstack.tokens import DEV_PARTNER, DEV_ROLE, ROLES, make_token
from services.infra.logging import configure_logging


def _echo(message: str) -> None:
    click.echo(message)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Local development stack of the MSP account import (CONTRACT.md section 5)."""


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".data"),
    envvar="MSP_DEV_DATA_DIR",
    show_envvar=True,
    help="PostgreSQL data (<dir>/postgres) and logs (<dir>/logs).",
)
@click.option(
    "--kafka-bootstrap-servers",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    show_envvar=True,
    help="Use this broker instead of starting Tansu.",
)
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    show_envvar=True,
    help="Use this PostgreSQL instead of starting one.",
)
@click.option(
    "--broker-port",
    type=int,
    default=9092,
    envvar="MSP_DEV_BROKER_PORT",
    show_envvar=True,
    help="Port of the local broker (the next free one if busy).",
)
@click.option(
    "--postgres-port",
    type=int,
    default=5432,
    envvar="MSP_DEV_POSTGRES_PORT",
    show_envvar=True,
    help="Port of the local PostgreSQL (the next free one if busy).",
)
@click.option("--http-port", type=int, default=8080, envvar="HTTP_PORT", show_envvar=True)
@click.option(
    "--worker-http-port", type=int, default=6066, envvar="WORKER_HTTP_PORT", show_envvar=True
)
@click.option(
    "--service-timeout",
    type=float,
    default=60.0,
    help="Seconds to wait for each service's migrate and /healthz.",
)
def up(
    data_dir: Path,
    kafka_bootstrap_servers: str | None,
    database_url: str | None,
    broker_port: int,
    postgres_port: int,
    http_port: int,
    worker_http_port: int,
    service_timeout: float,
) -> None:
    """Start broker, PostgreSQL, topics and both services; Ctrl-C stops everything.

    AUTH_JWT_SECRET is generated when unset. TOPIC_PARTITIONS and TOPIC_* apply.
    """
    began = time.monotonic()
    configure_logging("WARNING", service="msp-import-dev")
    config = StackConfig(
        data_dir=data_dir,
        broker_port=broker_port,
        postgres_port=postgres_port,
        http_port=http_port,
        worker_http_port=worker_http_port,
        kafka_bootstrap=kafka_bootstrap_servers or None,
        database_url=database_url or None,
        jwt_secret=os.environ.get("AUTH_JWT_SECRET") or None,
        service_timeout=service_timeout,
    )
    sys.exit(asyncio.run(serve(config, began, with_ui_link(_echo, http_port), _echo_err)))


@main.command()
@click.option("--role", default=DEV_ROLE, help=f"One of {', '.join(ROLES)} (others give 403).")
@click.option("--partner", default=DEV_PARTNER, help="The partner_id claim.")
@click.option("--sub", "subject", default=None, help="The sub claim [default: dev-<role>].")
@click.option("--hours", type=float, default=12.0, help="Validity.")
@click.option(
    "--secret",
    envvar="AUTH_JWT_SECRET",
    show_envvar=True,
    required=True,
    help="HS256 secret; normally taken from the environment.",
)
def token(role: str, partner: str, subject: str | None, hours: float, secret: str) -> None:
    """Print a JWT for the policy service signed with AUTH_JWT_SECRET."""
    from datetime import timedelta

    click.echo(
        make_token(
            secret, role=role, partner_id=partner, subject=subject, ttl=timedelta(hours=hours)
        )
    )
