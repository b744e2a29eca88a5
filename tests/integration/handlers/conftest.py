"""Fixtures of the handlers' integration tests: a migrated database, a producer, HTTP, the
vendors' simulators on loopback, and ``handlers run`` subprocesses with topics of their own."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.infra.migrations import migrate
from tests import secret_watch
from tests.integration.import_worker.support import Reader
from tests.simulators.autotask import AutotaskSim
from tests.simulators.connectwise import ConnectWiseSim
from tests.simulators.graph import GraphSim
from tests.simulators.halo import HaloSim
from tests.simulators.hudu import HuduSim
from tests.simulators.itglue import ITGlueSim
from tests.simulators.serve import MOUNTS

from .harness import Bus, Handlers, Served, reader_topics

MIGRATIONS = "services.handlers.adapters.migrations"


@pytest.fixture(scope="session")
async def handlers_database(database_url: str) -> str:
    await migrate(database_url, "handlers", MIGRATIONS)
    return database_url


@pytest.fixture(scope="session")
async def handlers_db(handlers_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(handlers_database, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def bus_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
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


@dataclass
class Rig:
    handlers: Handlers
    bus: Bus
    reader: Reader
    served: Served


CREDENTIALS = {
    "connectwise": {
        "company_id": "acme",
        "public_key": "pub-Qw1",
        "private_key": "priv-Er2",
        "client_id": "11111111-2222-4333-8444-555555555555",
    },
    "autotask": {"username": "api@acme", "secret": "at-secret-Ty3", "integration_code": "CODE1"},
    "halo": {"client_id": "halo-client", "client_secret": "halo-secret-Ui4"},
    "itglue": {"api_key": "ITG.itglue-key-Op5"},
    "hudu": {"api_key": "hudu-key-As6"},
    "m365": {
        "tenant_id": "0b5e1c2d-3f40-4a51-8b62-7c83d94ea5f6",
        "client_id": "m365-client",
        "client_secret": "m365-secret-Df7",
    },
}


for _credentials in CREDENTIALS.values():
    secret_watch.watch_credentials(_credentials)


def make_sims(**overrides: object) -> dict[str, object]:
    cw = CREDENTIALS["connectwise"]
    at = CREDENTIALS["autotask"]
    return {
        "connectwise": ConnectWiseSim(
            company_id=cw["company_id"],
            public_key=cw["public_key"],
            private_key=cw["private_key"],
            client_id=cw["client_id"],
            **overrides.get("connectwise", {}),  # type: ignore[arg-type]
        ),
        "autotask": AutotaskSim(
            username=at["username"],
            secret=at["secret"],
            integration_code=at["integration_code"],
            **overrides.get("autotask", {}),  # type: ignore[arg-type]
        ),
        "halo": HaloSim(
            client_id=CREDENTIALS["halo"]["client_id"],
            client_secret=CREDENTIALS["halo"]["client_secret"],
            **overrides.get("halo", {}),  # type: ignore[arg-type]
        ),
        "itglue": ITGlueSim(
            api_key=CREDENTIALS["itglue"]["api_key"],
            **overrides.get("itglue", {}),  # type: ignore[arg-type]
        ),
        "hudu": HuduSim(
            api_key=CREDENTIALS["hudu"]["api_key"],
            **overrides.get("hudu", {}),  # type: ignore[arg-type]
        ),
        "graph": GraphSim(
            tenant_id=CREDENTIALS["m365"]["tenant_id"],
            client_id=CREDENTIALS["m365"]["client_id"],
            client_secret=CREDENTIALS["m365"]["client_secret"],
            **overrides.get("graph", {}),  # type: ignore[arg-type]
        ),
    }


@pytest.fixture(scope="module")
async def start_rig(
    kafka_bootstrap: str,
    handlers_database: str,
    bus_producer: AIOKafkaProducer,
    http: aiohttp.ClientSession,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """Start handlers (with simulators) for this module; all are stopped at its end."""
    started: list[Rig] = []
    log_dir = Path(tmp_path_factory.mktemp("handlers"))

    async def start(*, sims: dict[str, object] | None = None, run: bool = True, **env: str) -> Rig:
        served = await Served(sims or make_sims(), MOUNTS).start()  # type: ignore[arg-type]
        handlers = Handlers(kafka_bootstrap, handlers_database, log_dir, extra_env=dict(env))
        await handlers.create_topics()
        reader = await Reader(kafka_bootstrap, reader_topics(handlers)).start()
        rig = Rig(handlers, Bus(bus_producer, handlers, reader), reader, served)
        started.append(rig)
        if run:
            handlers.start()
            await handlers.ready(http)
        return rig

    yield start
    for rig in started:
        rig.handlers.stop()
        await rig.reader.stop()
        await rig.served.stop()
        print(f"--- handlers {rig.handlers.suffix} log tail ---\n{rig.handlers.log_tail()}")
