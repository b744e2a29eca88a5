"""``policy-service run`` as a benchmark's subprocess, and waiting for an HTTP server.

Shared by the benchmarks that load the policy service (accounts pages, API ceiling,
policy load): the same settings, its log in the run's directory, stopped on exit.
"""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from services.infra.devstack.net import free_port
from services.policy_service.api.auth import issue_token

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServedPolicy:
    base_url: str
    pid: int


@contextlib.contextmanager
def policy_service(
    dsn: str, bootstrap: str, log_dir: Path, jwt_secret: str, secrets_key: str, **env: str
) -> Iterator[ServedPolicy]:
    """The service on a free port (``env``: more settings); terminated on exit."""
    port = free_port()
    settings = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AUTH_JWT_SECRET": jwt_secret,
        "SECRETS_KEY": secrets_key,
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen(
        [str(BIN / "policy-service"), "run"],
        env=settings,
        stdout=(log_dir / "service.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield ServedPolicy(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)


async def wait_ready(session: aiohttp.ClientSession, url: str, attempts: int = 300) -> None:
    """Until ``url`` answers below 500 (every 0.1 s)."""
    for _ in range(attempts):
        try:
            async with session.get(url) as r:
                if r.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"never ready: {url}")


async def seed(
    session: aiohttp.ClientSession, base: str, partner: str, jwt_secret: str
) -> tuple[str, list[str], str]:
    """A partner with 20 customers and a default end-user policy over them: (the
    manager's Authorization header, the customer ids, the policy id)."""
    auth = "Bearer " + issue_token(
        jwt_secret, sub="bench", partner_id=partner, role="manager", ttl_seconds=7200
    )
    customers = []
    for i in range(20):
        async with session.post(
            f"{base}/v1/customers", headers={"Authorization": auth}, json={"name": f"C{i}"}
        ) as r:
            customers.append((await r.json())["id"])
    async with session.post(
        f"{base}/v1/import-policies",
        headers={"Authorization": auth},
        json={"account_type": "end_user", "name": "P", "is_default": True,
              "customer_ids": customers, "options": {"send_welcome_email": True}},
    ) as r:  # fmt: skip
        policy = (await r.json())["id"]
    return auth, customers, policy
