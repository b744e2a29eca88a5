"""A small load test of the policy service: read and write latency, outbox publish lag.

    python bench/policy_load.py      (BENCH_SECONDS=10, BENCH_CONCURRENCY=16)

Starts its own broker and PostgreSQL, runs ``policy-service run`` as a
subprocess, seeds a few partners, then for BENCH_SECONDS each:
``GET /v1/customers/{id}/effective-policies`` and ``PATCH
/v1/import-policies/{id}`` from BENCH_CONCURRENCY concurrent clients, and
prints p50/p99 of each, plus the outbox publish lag measured on the topic
(broker receive time minus the event's ``time``).
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.migrations import migrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served_policy import policy_service, seed, wait_ready  # a sibling script

SECRET = "bench-secret-" + "x" * 32
SECRETS_KEY = "YmVuY2gtc2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2Q="  # base64 of 32 bytes
BIN = Path(sys.executable).parent


def quantiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1000, q[98] * 1000


async def hammer(
    session: aiohttp.ClientSession,
    method: str,
    urls: list[str],
    auth: str,
    seconds: float,
    concurrency: int,
    body: object = None,
) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            payload = {"description": f"d{i}"} if body == "patch" else None
            start = time.perf_counter()
            async with session.request(
                method, urls[i % len(urls)], json=payload, headers={"Authorization": auth}
            ) as r:
                await r.read()
                assert r.status == 200, r.status
            samples.append(time.perf_counter() - start)
            i += concurrency

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return samples


async def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", 10))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 16))
    tmp = Path(tempfile.mkdtemp(prefix="policy-load-"))
    with (
        LocalBroker(log_path=tmp / "tansu.log") as broker,
        LocalPostgres(tmp / "pg", throwaway=True) as pg,
    ):
        await migrate(pg.dsn(), "policy_service", "services.policy_service.adapters.migrations")
        with policy_service(
            pg.dsn(), broker.bootstrap, tmp, SECRET, SECRETS_KEY,
            RELAY_POLL_INTERVAL_SECONDS="0.5",
        ) as served:  # fmt: skip
            base = served.base_url
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, f"{base}/readyz")
                seeded = [
                    await seed(session, base, f"load-{uuid.uuid4().hex[:8]}", SECRET)
                    for _ in range(concurrency)
                ]
                auth, customers, _ = seeded[0]
                reads = [f"{base}/v1/customers/{c}/effective-policies" for c in customers]
                read = await hammer(session, "GET", reads, auth, seconds, concurrency)
                r50, r99 = quantiles(read)
                print(
                    f"GET effective-policies: {len(read) / seconds:7.0f} req/s, "
                    f"p50 {r50:.1f} ms, p99 {r99:.1f} ms (concurrency {concurrency})"
                )
                # writes: one client per partner (writes of one partner are serialised)
                patches: list[float] = []
                await asyncio.gather(
                    *(_patch_loop(session, base, a, p, seconds, patches) for a, _, p in seeded)
                )
                w50, w99 = quantiles(patches)
                print(
                    f"PATCH import-policy:    {len(patches) / seconds:7.0f} req/s, "
                    f"p50 {w50:.1f} ms, p99 {w99:.1f} ms ({concurrency} partners)"
                )
            lag = await publish_lag(broker.bootstrap)
            l50, l99 = quantiles(lag)
            print(
                f"outbox publish lag (commit -> on the topic): p50 {l50:.1f} ms, "
                f"p99 {l99:.1f} ms over {len(lag)} events"
            )


async def _patch_loop(
    session: aiohttp.ClientSession,
    base: str,
    auth: str,
    policy: str,
    seconds: float,
    out: list[float],
) -> None:
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        start = time.perf_counter()
        async with session.patch(
            f"{base}/v1/import-policies/{policy}",
            headers={"Authorization": auth},
            json={"description": f"rev {i}"},
        ) as r:
            await r.read()
            assert r.status == 200, r.status
        out.append(time.perf_counter() - start)


async def publish_lag(bootstrap: str) -> list[float]:
    """Broker append time (record timestamp) minus the event's own ``time``."""
    consumer = AIOKafkaConsumer(
        "policy.events",
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    lags: list[float] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                break
            for records in batch.values():
                for r in records:
                    event_time = datetime.fromisoformat(json.loads(r.value)["time"])
                    lags.append(max(0.0, r.timestamp / 1000 - event_time.timestamp()))
    finally:
        await consumer.stop()
    return lags


if __name__ == "__main__":
    asyncio.run(main())
