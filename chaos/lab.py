"""The lab the scenarios run in: a broker and PostgreSQL of the suite's own, a migrated
database per scenario, and the services as real processes.

The import worker subprocess, the topic reader and the committed-offsets probe are
the integration tests' own (``tests/integration/import_worker``); the policy
service is started with ``policy-service run`` (or ``relay``) like in production.
Always our own Tansu and embedded PostgreSQL, never ``TEST_*`` servers: scenarios
kill and restart them.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.topics import CHANNELS, TopicNames
from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.devstack.databases import create_database
from services.infra.devstack.net import free_port
from services.infra.migrations import migrate
from services.policy_service.settings import PolicyServiceSettings
from tests.integration.import_worker.support import Offsets, Reader
from tests.integration.import_worker.worker import PARTITIONS, Worker, wait_until
from tests.integration.policy_service.support import SECRET, SECRETS_KEY

BIN = Path(sys.executable).parent
MIGRATIONS = {
    "import_worker": "services.import_worker.adapters.migrations",
    "policy_service": "services.policy_service.adapters.migrations",
}

__all__ = ["PARTITIONS", "SECRET", "Lab", "PolicyProc", "WorkerRig", "wait_until"]


def with_params(dsn: str, **params: str | int) -> str:
    """``dsn`` with extra query parameters (asyncpg passes them on as server settings)."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{dsn}{'&' if '?' in dsn else '?'}{query}"


def watchful(dsn: str, name: str) -> str:
    """A DSN whose sessions notice a dead client within 20 ms and abort its transaction.

    Without it a SIGKILLed process's statement still waiting on a lock would finish
    (and, outside a transaction, commit) once the lock is released.
    """
    return with_params(dsn, client_connection_check_interval=20, application_name=name)


class Lab:
    """One broker and one PostgreSQL for a whole run; logs under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = LocalBroker(log_path=workdir / "tansu.log")
        self._pg_dir = Path(tempfile.mkdtemp(prefix="msp-pg-"))
        self.postgres = LocalPostgres(self._pg_dir / "data", throwaway=True)

    def __enter__(self) -> "Lab":
        self.broker.start()
        try:
            self.postgres.start()
        except BaseException:
            self.broker.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.postgres.stop()
        finally:
            self.broker.stop()
            shutil.rmtree(self._pg_dir, ignore_errors=True)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def logs(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def database(self, name: str, server: LocalPostgres | None = None) -> str:
        """A new database with both services' schemas migrated; its DSN."""
        server = server or self.postgres
        dsn = await create_database(server.dsn(), f"chaos_{name}_{uuid.uuid4().hex[:8]}")
        for schema, package in MIGRATIONS.items():
            await migrate(dsn, schema, package)
        return dsn

    @contextlib.contextmanager
    def own_broker(self, name: str) -> Iterator[LocalBroker]:
        """A broker of the scenario's own, for scenarios that stop it."""
        with LocalBroker(log_path=self.logs(name) / "tansu.log") as broker:
            yield broker

    @contextlib.contextmanager
    def own_postgres(self) -> Iterator[LocalPostgres]:
        """A durable PostgreSQL of the scenario's own, for scenarios that kill it.

        Not ``throwaway``: with ``synchronous_commit=off`` a SIGKILLed server loses
        commits it had already acknowledged, which no service can make up for.
        """
        path = Path(tempfile.mkdtemp(prefix="msp-pg-"))
        try:
            with LocalPostgres(path / "data", throwaway=False) as server:
                yield server
        finally:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    made = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_request_size=4_194_304,
        max_batch_size=1_048_576,
    )
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


@contextlib.asynccontextmanager
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@dataclass
class WorkerRig:
    """``count`` worker processes of ONE group (same topics), a reader of everything they
    produce and the group's committed offsets."""

    bootstrap: str
    database_url: str
    log_dir: Path
    count: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    watch_db: bool = True
    workers: list[Worker] = field(default_factory=list)
    reader: Reader | None = None
    offsets: Offsets | None = None

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:10]
        for i in range(1, self.count + 1):
            log_dir = self.log_dir / f"w{i}"
            log_dir.mkdir(parents=True, exist_ok=True)
            dsn = watchful(self.database_url, f"chaos-w{i}") if self.watch_db else self.database_url
            env = {"DATABASE_URL": dsn, "FAILURE_BACKOFF_MAX_SECONDS": "1", **self.extra_env}
            self.workers.append(Worker(self.bootstrap, dsn, log_dir, extra_env=env, suffix=suffix))

    @property
    def topics(self) -> TopicNames:
        return self.workers[0].topics

    @property
    def retry_topic(self) -> str:
        return self.workers[0].retry_topic

    @property
    def group(self) -> str:
        return self.workers[0].group

    def outputs(self) -> list[str]:
        t = self.topics
        return [
            *(getattr(t, name) for name in CHANNELS if name.startswith("commands_")),
            t.import_decisions,
            t.account_discovered_dlq,
        ]

    async def __aenter__(self) -> "WorkerRig":
        await self.workers[0].create_topics()
        self.reader = await Reader(self.bootstrap, self.outputs()).start()
        self.offsets = await Offsets(self.bootstrap, self.group).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self.workers:
            w.stop()
        if self.reader is not None:
            await self.reader.stop()
        if self.offsets is not None:
            await self.offsets.stop()

    async def start_all(self, http: aiohttp.ClientSession) -> None:
        for w in self.workers:
            w.start()
        for w in self.workers:
            await w.wait_ready(http, timeout=90)

    async def committed(self, topic: str | None = None) -> dict[int, int]:
        assert self.offsets is not None
        return await self.offsets.committed(topic or self.topics.account_discovered)

    def log_tails(self) -> str:
        return "\n".join(
            f"--- worker {i + 1} ---\n{w.log_tail(30)}" for i, w in enumerate(self.workers)
        )


def _service_env_names() -> set[str]:
    return {name.upper() for name in PolicyServiceSettings.model_fields}


@dataclass
class PolicyProc:
    """``policy-service run`` (API, with or without the relay) or ``policy-service relay``."""

    database_url: str
    bootstrap: str
    topics: TopicNames
    log_dir: Path
    command: str = "run"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        ours = _service_env_names()
        env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("TOPIC_")}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "AUTH_JWT_SECRET": SECRET,
                "SECRETS_KEY": SECRETS_KEY,
                "INTEGRATIONS_ALLOW_PRIVATE": "true",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(self.port),
                "LOG_LEVEL": "WARNING",
                "RELAY_POLL_INTERVAL_SECONDS": "0.05",
                "KAFKA_REQUEST_TIMEOUT_MS": "2000",
                "TOPIC_PARTITIONS": str(PARTITIONS),
            }
        )
        env.update({f"TOPIC_{name.upper()}": getattr(self.topics, name) for name in CHANNELS})
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        assert not self.alive(), "already running"
        self.starts += 1
        path = self.log_dir / f"policy-{self.command}-{self.starts}.log"
        with path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "policy-service"), self.command],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_dir,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted(self.log_dir.glob(f"policy-{self.command}-*.log"))
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        return "\n".join(text.splitlines()[-lines:])

    async def ready(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(self.base_url + "/readyz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        async def ready() -> bool:
            assert self.alive(), f"policy-service {self.command} exited:\n{self.log_tail()}"
            return await self.ready(http)

        await wait_until(ready, f"policy-service {self.command} /readyz", timeout, every=0.1)


async def metric(http: aiohttp.ClientSession, base_url: str, sample: str) -> float:
    """One sample of a ``/metrics`` page (0 when absent)."""
    async with http.get(base_url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


async def projection_events(http: aiohttp.ClientSession, base_url: str, outcome: str) -> float:
    """Policy and customer events a worker projected with ``outcome`` (applied, stale, ...)."""
    return sum(
        [
            await metric(
                http,
                base_url,
                f'import_projection_events_total{{entity="{entity}",result="{outcome}"}}',
            )
            for entity in ("policy", "customer")
        ]
    )


async def pool(dsn: str) -> Any:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=4)
