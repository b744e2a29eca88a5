"""SIGTERM while the broker is down (docs/contract.md §3): both services exit within 10 s.

Before, ``import-worker`` took more than a minute (Faust waited 60 s for its consumer
thread, whose aiokafka ``stop()`` raised a stray CancelledError, and for ever for a
final offset commit), and ``policy-service`` waited out the relay's produce timeout
and the producer's flush. Now a stop that cannot finish in ``SHUTDOWN_TIMEOUT_SECONDS``
ends the process, committing nothing more: what was not finished is redone by the
next owner with the same ids.
"""

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from chaos.lab import PolicyProc
from schemas.enums import AccountType
from schemas.topics import TopicNames
from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.migrations import migrate
from tests.integration.policy_service.support import MIGRATIONS as POLICY_MIGRATIONS
from tests.integration.policy_service.support import Api, Tenant

from .events import account, customer, discovered, end_user_options, policy
from .support import Bus
from .worker import Worker

LIMIT = 10.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of the test's own: it is killed."""
    broker = LocalBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_the_worker_stops_within_10_s_with_the_broker_gone(
    own_broker: LocalBroker, worker_database: str, tmp_path: Path
) -> None:
    worker = Worker(own_broker.bootstrap, worker_database, tmp_path)
    await worker.create_topics()
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, enable_idempotence=False)
    await producer.start()
    async with aiohttp.ClientSession() as http:
        try:
            worker.start()
            await worker.wait_ready(http, timeout=90)
            bus = Bus(producer, worker.topics)
            partner = f"sigterm-{uuid.uuid4().hex[:8]}"
            state = policy(partner, AccountType.END_USER, end_user_options())
            known = customer(partner, end_user=state.id)
            await bus.policy(state)
            await bus.customer(known)
            for _ in range(20):
                await bus.discovered(discovered(partner, account(known.id)))
        finally:
            await producer.stop()
        await asyncio.sleep(1)  # traffic in flight, and an uncommitted projection offset
        own_broker.kill()
        await asyncio.sleep(1)
        assert worker.proc is not None
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.proc.wait, 30)
        took = time.monotonic() - started
    assert took < LIMIT, f"exit after {took:.1f}s (code {code}):\n{worker.log_tail()}"


async def test_the_policy_service_stops_within_10_s_with_the_broker_gone(
    own_broker: LocalBroker, postgres: LocalPostgres, tmp_path: Path
) -> None:
    # A database of its own: its outbox keeps rows for a broker that is gone.
    dsn = postgres.create_database(f"sigterm_{uuid.uuid4().hex[:10]}")
    await migrate(dsn, "policy_service", POLICY_MIGRATIONS)
    service = PolicyProc(
        dsn,
        own_broker.bootstrap,
        TopicNames(),
        tmp_path,
        extra_env={"KAFKA_REQUEST_TIMEOUT_MS": "40000", "RELAY_POLL_INTERVAL_SECONDS": "0.05"},
    )
    async with aiohttp.ClientSession() as http:
        service.start()
        try:
            await service.wait_ready(http)
            tenant = Tenant(Api(http, service.base_url))
            await tenant.create_policy()
            own_broker.kill()
            for _ in range(5):  # changes the relay will try to publish meanwhile
                await tenant.create_policy()
            await asyncio.sleep(0.5)
            assert service.proc is not None
            started = time.monotonic()
            service.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(service.proc.wait, 60)
            took = time.monotonic() - started
        finally:
            service.stop()
    assert took < LIMIT, f"exit after {took:.1f}s (code {code}):\n{service.log_tail()}"
