"""``msp-import-dev``: the Docker-free local stack (``make run``) and dev tokens."""

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import click

from services.infra.devstack.demo import with_ui_link
from services.infra.devstack.stack import StackConfig, serve
from services.infra.devstack.tokens import DEV_PARTNER, DEV_ROLE, ROLES, make_token
from services.infra.logging import configure_logging


class _Output:
    """Where ``up`` prints: stdout; once its reader is gone, stderr; then nowhere.

    ``make run | tee run.log`` and Ctrl-C: the terminal's SIGINT also ends
    ``tee``, and the next line ``up`` prints ("stopping services ...") meets a
    broken pipe. Printing must never raise there, or ``up`` would die before
    stopping its services, broker and database in order.
    """

    def __init__(self) -> None:
        self._gone = {"stdout": False, "stderr": False}  # the stream's reader is gone

    def echo(self, message: str) -> None:
        """Print ``message`` to stdout, or to stderr when stdout's reader is gone."""
        if not self._write(message, err=False):
            self._write(message, err=True)

    def echo_err(self, message: str) -> None:
        """Print ``message`` to stderr, unless its reader is gone."""
        self._write(message, err=True)

    def _write(self, message: str, *, err: bool) -> bool:
        name = "stderr" if err else "stdout"
        if self._gone[name]:
            return False
        try:
            click.echo(message, err=err)
        except OSError:  # EPIPE (the pipe's reader exited), EIO (the terminal closed)
            self._gone[name] = True
            _silence(sys.stderr if err else sys.stdout)
            return False
        return True


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null.

    The interpreter's last flush at exit (of what the failed write left in the
    buffer) then succeeds quietly instead of raising ``BrokenPipeError`` again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Local development stack of the MSP account import (docs/contract.md §5)."""


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
    output = _Output()
    echo = with_ui_link(output.echo, http_port)
    sys.exit(asyncio.run(serve(config, began, echo, output.echo_err)))


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
