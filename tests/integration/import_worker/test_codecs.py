"""Every Kafka codec, for real: discoveries and policy/customer events produced by a
client that compresses (as agents built on librdkafka, the Java client or Kafka Connect
do) are decided and projected by the running worker.

Before ``cramjam`` was installed with the services, gzip worked but snappy, lz4 and
zstd batches were never decoded: the worker logged "fetching a batch failed" once a
second for good and decided nothing more, for any partner.
"""

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.enums import AccountType

from .events import account, customer, discovered, end_user_options, policy
from .support import Bus, Harness
from .worker import wait_until

CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.fixture(scope="module")
async def codec_harness(start_worker: Callable[..., Awaitable[Harness]]) -> Harness:
    return await start_worker()


@pytest.fixture(params=CODECS)
async def compressing(
    request: pytest.FixtureRequest, kafka_bootstrap: str, codec_harness: Harness
) -> AsyncIterator[tuple[str, Bus]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        compression_type=request.param,
        linger_ms=20,  # several records per (compressed) batch
    )
    await producer.start()
    try:
        yield request.param, Bus(producer, codec_harness.topics)
    finally:
        await producer.stop()


async def test_compressed_events_are_projected_and_decided(
    compressing: tuple[str, Bus], codec_harness: Harness, worker_db: asyncpg.Pool
) -> None:
    codec, bus = compressing
    h = codec_harness
    partner = f"codec-{codec}"
    state = policy(partner, AccountType.END_USER, end_user_options())
    known = customer(partner, end_user=state.id)
    await bus.policy(state)
    await bus.customer(known)

    async def projected() -> bool:
        version = await worker_db.fetchval(
            "SELECT version FROM import_worker.customers WHERE id = $1", known.id
        )
        return version == 1

    await wait_until(projected, f"the {codec}-compressed customer in the projection")

    event = discovered(partner, account(known.id))
    await bus.discovered(event)
    decision, commands = await h.outcome(event)
    assert decision.envelope["data"]["outcome"] == "imported"
    assert len(commands) == 3  # welcome email, self-service reset, Microsoft 365 sync
    assert h.worker.alive()
