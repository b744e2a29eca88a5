"""``make bench-handlers``: the handlers against the vendors' simulators, in one run.

Starts its own broker (Tansu), PostgreSQL (embedded), the simulators (in this process,
on loopback) and ``handlers run`` processes, then measures:

  (a) the runtime's ceiling: commands/s through one handlers process with no vendor
      limit (``VENDOR_PACING=false``; Hudu lookups that find nothing, one cheap request
      each, so the simulators sharing this process are not what is measured);
  (b) pacing: a Halo limit scaled down to 300 requests per 10 s (``VENDOR_WINDOW_SCALE``
      = 1/30 of the documented 300 per 5 minutes), the simulator counting the same
      window: achieved rate as a share of the limit, and requests over it (must be 0);
  (c) isolation: partner B's p50/p99 command latency (send -> result) alone, then
      while partner A's ConnectWise (paced to 6 requests per 2 s) holds a backlog of
      hundreds of commands on the same topics; the ratio with/alone (goal: <= 2).

The last line is ``RATIOS halo_rate/limit=<x> b_p99_with_a/alone=<y>``.
Sizes: BENCH_HANDLERS_COMMANDS (default 2000) for (a), BENCH_HALO_COMMANDS (450) for
(b), BENCH_B_COMMANDS (150) and BENCH_A_BACKLOG (400) for (c).
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.migrations import migrate
from tests.integration.handlers.conftest import CREDENTIALS, make_sims
from tests.integration.handlers.harness import (
    Bus,
    Handlers,
    Served,
    doc_link,
    psa_link,
)
from tests.integration.import_worker.support import Reader
from tests.simulators.limits import RateLimit
from tests.simulators.serve import MOUNTS

COMMANDS = int(os.environ.get("BENCH_HANDLERS_COMMANDS", "2000"))
HALO_COMMANDS = int(os.environ.get("BENCH_HALO_COMMANDS", "450"))
B_COMMANDS = int(os.environ.get("BENCH_B_COMMANDS", "150"))
A_BACKLOG = int(os.environ.get("BENCH_A_BACKLOG", "400"))
UNLIMITED = {
    "connectwise": {"requests_per_minute": 100_000},
    "hudu": {"requests_per_minute": 100_000},
}


class Results:
    """Every command.results record, stamped with when it arrived here."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        self.topic = topic
        self.arrived: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> "Results":
        await self.consumer.start()
        await self.consumer.topics()
        parts = self.consumer.partitions_for_topic(self.topic) or set()
        self.consumer.assign([TopicPartition(self.topic, p) for p in parts])
        self._task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        import json

        while True:
            batch = await self.consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    cid = json.loads(r.value)["data"]["command_id"]
                    self.arrived.setdefault(cid, now)

    async def wait(self, ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= set(self.arrived):
            if time.monotonic() > deadline:
                missing = len(ids - set(self.arrived))
                raise RuntimeError(f"{missing} of {len(ids)} commands got no result in time")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


async def _rig(
    bootstrap: str, dsn: str, logs: Path, sims: dict[str, Any], **env: str
) -> tuple[Handlers, Served, Results, Reader]:
    served = await Served(sims, MOUNTS).start()  # type: ignore[arg-type]
    handlers = Handlers(bootstrap, dsn, logs, extra_env={"LOG_LEVEL": "ERROR", **env})
    await handlers.create_topics()
    results = await Results(bootstrap, handlers.topics.command_results).start()
    reader = await Reader(bootstrap, [handlers.topics.commands_dlq]).start()
    return handlers, served, results, reader


def _seed(sims: dict[str, Any]) -> None:
    sims["connectwise"].add_company(1001, "Contoso Ltd")
    sims["halo"].add_client(88, "Tailspin Toys")
    sims["hudu"].add_company(77, "Fabrikam Inc")


async def ceiling(bootstrap: str, dsn: str, logs: Path, prod: AIOKafkaProducer) -> float:
    sims: dict[str, Any] = make_sims(
        **{p: {"rate_limit": None} for p in ("connectwise", "halo", "hudu")}
    )
    _seed(sims)
    handlers, served, results, reader = await _rig(
        bootstrap, dsn, logs, sims, VENDOR_PACING="false", MAX_IN_FLIGHT="5000"
    )
    bus = Bus(prod, handlers, reader)
    partner = f"bench-{uuid.uuid4().hex[:8]}"
    await bus.integration(
        partner, "hudu", served.url("hudu"), CREDENTIALS["hudu"], UNLIMITED["hudu"]
    )
    try:
        async with aiohttp.ClientSession() as http:
            handlers.start()
            await handlers.ready(http, timeout=120)
            # One cheap vendor request each (a Hudu lookup that finds nothing), so that
            # the simulators, in this process, are not what is measured.
            commands = [
                doc_link(partner, "hudu", "77", create=False, username=f"c{i}")
                for i in range(COMMANDS)
            ]
            started = time.monotonic()
            ids = {await bus.command(partner, c) for c in commands}
            await results.wait(ids, timeout=600)
            took = time.monotonic() - started
    finally:
        handlers.stop()
        await results.stop()
        await reader.stop()
        await served.stop()
    rate = COMMANDS / took
    print(
        f"(a) ceiling: {COMMANDS} commands in {took:.1f} s = {rate:.0f} commands/s "
        "(one vendor request each)",
        flush=True,
    )
    return rate


async def paced(
    bootstrap: str, dsn: str, logs: Path, prod: AIOKafkaProducer
) -> tuple[float, dict[str, float]]:
    sims: dict[str, Any] = make_sims(
        halo={"rate_limit": RateLimit(300, 10.0)},
        connectwise={"rate_limit": None},
        hudu={"rate_limit": None},
    )
    _seed(sims)
    handlers, served, results, reader = await _rig(
        bootstrap, dsn, logs, sims, VENDOR_WINDOW_SCALE=str(1 / 30), MAX_IN_FLIGHT="5000"
    )
    bus = Bus(prod, handlers, reader)
    halo_partner = f"halo-{uuid.uuid4().hex[:8]}"
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    await bus.integration(halo_partner, "halo", served.url("halo"), CREDENTIALS["halo"])
    await bus.integration(
        a,
        "connectwise",
        served.url("connectwise"),
        CREDENTIALS["connectwise"],
        {"requests_per_minute": 6},
    )  # 6 per 2 s once scaled
    await bus.integration(b, "hudu", served.url("hudu"), CREDENTIALS["hudu"], UNLIMITED["hudu"])
    try:
        async with aiohttp.ClientSession() as http:
            handlers.start()
            await handlers.ready(http, timeout=120)
            halo = served.sims["halo"]
            ids = {
                await bus.command(
                    halo_partner, psa_link(halo_partner, "halo", "88", email=f"h{i}@bench.example")
                )
                for i in range(HALO_COMMANDS)
            }
            await results.wait(ids, timeout=900)
            times = sorted(r.monotonic for r in halo.requests if "/api/" in r.path)
            span = times[-1] - times[0]
            achieved = (len(times) - 300) / span if span > 0 else 0.0  # past the first window
            share = achieved / 30.0
            over = halo.max_in_any_window(10.0) - 300
            print(
                f"(b) Halo at 300 per 10 s: {len(times)} requests, {achieved:.1f}/s after the "
                f"first window = {share:.0%} of the limit; most in any 10 s window "
                f"{halo.max_in_any_window(10.0)} (over the limit: {max(0, over)}); "
                f"429s: {halo.rejected_429}",
                flush=True,
            )

            async def b_latencies(tag: str) -> list[float]:
                sent: dict[str, float] = {}
                for i in range(B_COMMANDS):
                    cmd = doc_link(b, "hudu", "77", create=False, username=f"{tag}{i}")
                    cid = await bus.command(b, cmd)
                    sent[cid] = time.monotonic()
                    await asyncio.sleep(0.02)
                await results.wait(set(sent), timeout=300)
                return sorted(results.arrived[c] - t for c, t in sent.items())

            alone = await b_latencies("alone")
            backlog = {
                await bus.command(
                    a, psa_link(a, "connectwise", "1001", email=f"a{i}@bench.example")
                )
                for i in range(A_BACKLOG)
            }
            await asyncio.sleep(1)
            with_a = await b_latencies("with")
            a_done = len(backlog & set(results.arrived))
    finally:
        handlers.stop()
        await results.stop()
        await reader.stop()
        await served.stop()
    figures = {
        "alone_p50": statistics.median(alone) * 1000,
        "alone_p99": alone[int(len(alone) * 0.99) - 1] * 1000,
        "with_p50": statistics.median(with_a) * 1000,
        "with_p99": with_a[int(len(with_a) * 0.99) - 1] * 1000,
    }
    print(
        f"(c) partner B latency: alone p50 {figures['alone_p50']:.0f} ms p99 "
        f"{figures['alone_p99']:.0f} ms; with A's backlog ({a_done}/{A_BACKLOG} of A done "
        f"meanwhile) p50 {figures['with_p50']:.0f} ms p99 {figures['with_p99']:.0f} ms",
        flush=True,
    )
    return share, figures


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-handlers-"))
    with (
        LocalBroker(log_path=work / "tansu.log") as broker,
        LocalPostgres(work / "pg", throwaway=True) as pg,
    ):
        dsn = pg.create_database("bench")
        await migrate(dsn, "handlers", "services.handlers.adapters.migrations")
        prod = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, linger_ms=5, enable_idempotence=False
        )
        await prod.start()
        try:
            rate = await ceiling(broker.bootstrap, dsn, work, prod)
            share, latency = await paced(broker.bootstrap, dsn, work, prod)
        finally:
            await prod.stop()
    ratio = latency["with_p99"] / latency["alone_p99"]
    print(
        f"RATIOS halo_rate/limit={share:.2f} b_p99_with_a/alone={ratio:.2f} "
        f"ceiling_commands_per_s={rate:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
