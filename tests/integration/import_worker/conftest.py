"""Fixtures of the import worker integration tests: a migrated database, a producer,
and a factory for worker subprocesses (each with topics and a group of its own)."""

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from .support import Bus, Harness, Offsets, Reader
from .worker import BIN, Worker


@pytest.fixture(scope="session")
def worker_database(database_url: str) -> str:
    """The session database, migrated by ``import-worker migrate`` (twice: idempotent)."""
    for _ in range(2):
        done = subprocess.run(
            [str(BIN / "import-worker"), "migrate"],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return database_url


@pytest.fixture(scope="session")
async def worker_db(worker_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(worker_database, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture(scope="module")
async def start_worker(
    kafka_bootstrap: str,
    worker_database: str,
    producer: AIOKafkaProducer,
    http: aiohttp.ClientSession,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Start workers for this module; all are stopped (and their clients closed) at its end."""
    started: list[Harness] = []
    log_dir = tmp_path_factory.mktemp("import-worker")

    async def start(*, run: bool = True, **kw: object) -> Harness:
        worker = Worker(kafka_bootstrap, worker_database, Path(log_dir), **kw)  # type: ignore[arg-type]
        await worker.create_topics()
        t = worker.topics
        outputs = [
            t.commands_psa,
            t.commands_documentation,
            t.commands_vault,
            t.commands_rotation,
            t.commands_notification,
            t.commands_identity,
            t.import_decisions,
            t.account_discovered_dlq,
            worker.retry_topic,
        ]
        reader = await Reader(kafka_bootstrap, outputs).start()
        offsets = await Offsets(kafka_bootstrap, worker.group).start()
        harness = Harness(worker, Bus(producer, t), reader, offsets, http)
        started.append(harness)
        if run:
            worker.start()
            await worker.wait_ready(http)
        return harness

    yield start
    for h in started:
        h.worker.stop()
        await h.reader.stop()
        await h.offsets.stop()
        print(f"--- worker {h.worker.suffix} log tail ---\n{h.worker.log_tail()}")


@pytest.fixture(scope="module")
async def harness(start_worker: Callable[..., Awaitable[Harness]]) -> Harness:
    """The module's worker."""
    return await start_worker()
