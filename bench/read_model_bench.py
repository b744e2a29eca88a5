"""The policy service's accounts read model in ``make bench``: accounts/s projected.

Called by ``worker_bench.py`` after its new-accounts phase, on the decisions that
phase's worker produced: each decision gets one ``command.succeeded`` per
command (what the handlers would report), and the service's own read-model
consumer (:class:`ReadModelConsumer`, as ``policy-service`` runs it) projects
decisions and results from the broker into PostgreSQL. The rate counts
accounts from the first one projected until every account is ``done``
(decision and all its results written), so start-up and the group join are
not counted.
"""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from services.handlers.domain.execution import result_id
from services.infra.kafka_admin import ensure_topics
from services.infra.migrations import migrate
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.read_model import ReadModelConfig, ReadModelConsumer
from services.policy_service.domain.accounts import command_types

RESULTS_TOPIC = "bench.command.results"


async def read_all(bootstrap: str, topic: str, total: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 120
        while len(values) < total and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            values += [r.value for rs in batch.values() for r in rs if r.value]
        return values
    finally:
        await consumer.stop()


def results_for(decision: bytes) -> list[tuple[bytes, bytes]]:
    """One ``command.succeeded`` per command of the decision, as the handlers send them."""
    event = json.loads(decision)
    data, key = event["data"], event["subject"]
    types = command_types(key)
    out = []
    now = datetime.now(UTC).isoformat()
    for cid in data["command_ids"]:
        command = uuid.UUID(cid)
        result = {
            "specversion": "1.0",
            "id": str(result_id(command, "matched")),
            "source": "urn:bench:handlers",
            "type": "command.succeeded",
            "time": now,
            "subject": key,
            "datacontenttype": "application/json",
            "partnerid": event["partnerid"],
            "causationid": cid,
            "correlationid": event["correlationid"],
            "data": {
                "command_id": cid,
                "command_type": types.get(command, "psa.contact.link"),
                "account_key": key,
                "customer_id": data["account"]["customer_id"],
                "provider": None,
                "refs": [],
                "outcome": "matched",
                "detail": "",
                "attempts": 1,
                "finished_at": now,
            },
        }
        out.append((key.encode(), json.dumps(result).encode()))
    return out


async def produce_results(bootstrap: str, results: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024,
        enable_idempotence=False,
    )  # fmt: skip
    await producer.start()
    try:
        for i in range(0, len(results), 5000):
            sent = [await producer.send(RESULTS_TOPIC, v, key=k) for k, v in results[i : i + 5000]]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def until(conn: asyncpg.Connection, sql: str, total: int, limit: float = 600) -> float:
    """Seconds from the first row ``sql`` counts until it counts ``total``."""
    first = None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = await conn.fetchval(sql)
        now = time.perf_counter()
        if seen and first is None:
            first = now
        if seen >= total:
            assert first is not None
            return max(now - first, 1e-3)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"read model: {seen} of {total} ({sql})")


async def projected_rate(
    bootstrap: str, dsn: str, decisions_topic: str, total: int, partitions: int
) -> tuple[float, float]:
    """(decisions/s, results/s) the read model projects: first the ``total``
    decisions, then one result per command of each (every account ``done``)."""
    await migrate(dsn, "policy_service", "services.policy_service.adapters.migrations")
    await ensure_topics(bootstrap, [RESULTS_TOPIC], partitions)
    decisions = await read_all(bootstrap, decisions_topic, total)
    results = [r for d in decisions for r in results_for(d)]
    db = Database(dsn, min_size=1, max_size=4)
    await db.open()
    consumer = ReadModelConsumer(
        ReadModelConfig(bootstrap, (decisions_topic, RESULTS_TOPIC), "bench-read-model"),
        db,
        CollectorRegistry(),
    )
    task = asyncio.create_task(consumer.run())
    conn = await asyncpg.connect(dsn)
    try:
        accounts = "SELECT count(*) FROM policy_service.accounts"
        decided = len(decisions) / await until(conn, accounts, len(decisions))
        await produce_results(bootstrap, results)
        done = "SELECT count(*) FROM policy_service.account_commands"
        reported = len(results) / await until(conn, done, len(results))
        return decided, reported
    finally:
        await conn.close()
        consumer.stop()
        await task
        await db.close()
