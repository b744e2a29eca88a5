"""``make bench``: throughput and latency of the import worker, as ratios to baselines.

One run starts its own broker (Tansu) and PostgreSQL (embedded), seeds the
worker's projection with customers and policies, and measures on the same
machine, in the same run:

  (a) raw aiokafka batched passthrough: getmany -> batched produce -> commit
      (the ceiling for any Python consumer here);
  (a-fan) the same loop sending as many records per event as (c) did per new
      account (its commands and decision, counted from the worker's metrics):
      what this broker allows a consumer with that fan-out;
  (b) the import worker on rediscoveries (accounts already in the ledger);
  (c) the import worker on new accounts (decide, commands, decision, ledger);
  (d) a per-event Faust agent passthrough;
  (e) the policy service's accounts read model on (c)'s decisions (accounts/s
      projected, beside (c)'s decisions/s), then on a result per command of
      each (results/s; bench/read_model_bench.py);

and prints events/s, the ratios b/a, c/a, c/(a-fan), b/d, p50/p99
discovery->decision latency at a fixed rate beside one trip of a record
through the broker at the same time (and how much that trip slowed from the
first second timed to the last), and the worker's peak RSS. The last line
is ``RATIOS rediscovery/raw=<x> new/raw=<y> rediscovery/faust=<z>
new/raw_fanout=<w> p99/broker_trip_p99=<v> ...``.

Sizes: BENCH_EVENTS (default 200000) with BENCH_REDISCOVERY (default 0.9)
of them rediscoveries; BENCH_FAUST_EVENTS (default 20000) for (d);
BENCH_RATE / BENCH_RATE_SECONDS (1000 ev/s for 10 s, after 5 s at that rate
not timed) for the latency probe;
BENCH_IDLE_SECONDS (60) of silence before one discovery whose decision is timed;
BENCH_WORKER_PROCESSES (default: the cores) for `import-worker run --processes`.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from schemas.customer import CustomerState, PolicyAssignment
from schemas.enums import AccountType
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from schemas.policy import PolicyState
from services.import_worker.adapters.projection import Projection
from services.import_worker.adapters.publisher import KafkaPublisher
from services.import_worker.service_layer.ports import OutMessage
from services.import_worker.simulate import AgentSimulator
from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.devstack.net import free_port_run
from services.infra.kafka_admin import ensure_topics
from services.infra.migrations import migrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_model_bench import projected_rate  # a sibling script

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PARTNER = "bench-partner"
PARTITIONS = 8
LATENCY_WARM_UP_SECONDS = 5
# (a-fan): a new account sends a record to some of seven topics (its commands'
# and its decision's); the raw loop forwards to as many, on average.
FANOUT_TOPICS = [f"bench.fanout.out{i}" for i in range(7)]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


async def seed(dsn: str, customers: int) -> list[uuid.UUID]:
    """Customers with both policies, half on a PSA company (some shared), half documented."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    projection = Projection(pool)
    now = datetime.now(UTC)
    eu, ad = uuid.uuid4(), uuid.uuid4()
    common = {
        "partner_id": PARTNER,
        "is_default": True,
        "customer_ids": [],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "changed_by": "bench",
        "description": "",
    }
    await projection.apply_policy(
        PolicyState(
            id=eu,
            account_type=AccountType.END_USER,
            name="Standard users",
            **common,
            options=EndUserOptions(
                documentation=MatchOrCreate(match=True, create_if_missing=True),
                psa=MatchOrCreate(match=True, create_if_missing=True),
                send_welcome_email=True,
                enable_self_serve_reset=True,
                sync_password_to_m365=True,
            ),
        )
    )
    await projection.apply_policy(
        PolicyState(
            id=ad,
            account_type=AccountType.ADMINISTRATOR,
            name="Admins",
            **common,
            options=AdministratorOptions(
                save_password_in_vault=True,
                documentation=MatchOrCreate(match=True),
                enable_password_rotation=True,
            ),
        )
    )
    ids = [uuid.uuid4() for _ in range(customers)]
    for i, cid in enumerate(ids):
        await projection.apply_customer(
            CustomerState(
                id=cid,
                partner_id=PARTNER,
                name=f"Customer {i}",
                version=1,
                created_at=now,
                updated_at=now,
                changed_by="bench",
                psa=PsaMapping(provider="connectwise", company_id=str(i // 2)) if i % 2 else None,
                documentation=DocumentationMapping(provider="itglue", organization_id=str(i))
                if i % 3
                else None,
                policy_ids=PolicyAssignment(end_user=eu, administrator=ad),
            )
        )
    await pool.close()
    return ids


async def samples_per_process(port: int, processes: int) -> list[list[Sample]]:
    """The metric samples of each worker process, read from its port (``port`` + i)."""
    found = []
    async with aiohttp.ClientSession() as http:
        for i in range(processes):
            async with http.get(f"http://127.0.0.1:{port + i}/metrics") as reply:
                text = await reply.text()
            families = text_string_to_metric_families(text)
            found.append([sample for family in families for sample in family.samples])
    return found


async def settle(
    bootstrap: str,
    topic: str,
    data: list[tuple[bytes, bytes]],
    port: int,
    processes: int,
    limit: float = 120,
) -> int:
    """Send a few records at a time until every worker process has done a batch.

    Then every process holds partitions: the group has formed, and no process
    joining mid-measurement pauses the partitions with a rebalance (a join
    takes about a second here, and (c) lasts two or three).
    Returns how many of ``data`` were sent.
    """
    sent, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            processed = [
                sum(x.value for x in samples if x.name == "import_batch_size_count")
                for samples in await samples_per_process(port, processes)
            ]
        except aiohttp.ClientError:  # a process is not serving its metrics yet
            processed = [0.0]
        if all(processed):
            return sent
        if sent + 16 > len(data):
            break
        await produce(bootstrap, topic, data[sent : sent + 16])
        sent += 16
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not every worker process took partitions after {sent} records")


async def records_per_decision(port: int, processes: int) -> float:
    """Records the worker sent per decision (its commands, plus the decision itself).

    Read from the worker's own counters (``import_commands``, ``import_events``
    by outcome) on every process's metrics port (``port`` + i).
    """
    samples = [x for each in await samples_per_process(port, processes) for x in each]
    commands = sum(x.value for x in samples if x.name == "import_commands_total")
    decisions = sum(
        x.value
        for x in samples
        if x.name == "import_events_total" and x.labels.get("outcome") in ("imported", "no_policy")
    )
    if not decisions:
        raise RuntimeError("the worker's metrics count no decision")
    return (commands + decisions) / decisions


def bench_producer(bootstrap: str) -> AIOKafkaProducer:
    """A producer set up as the worker's (acks=all, 1 MiB batches, no idempotence)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        enable_idempotence=False,
        max_batch_size=1_048_576,
    )


async def produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = bench_producer(bootstrap)
    await producer.start()
    try:
        publisher = KafkaPublisher(producer)
        for i in range(0, len(values), 5000):
            await publisher.publish([OutMessage(topic, k, v, []) for k, v in values[i : i + 5000]])
    finally:
        await producer.stop()


async def raw_passthrough(
    bootstrap: str,
    topic_in: str,
    topics_out: list[str],
    total: int,
    group: str = "bench-raw",
    fanout: float = 1.0,
) -> float:
    """(a): the same batched consume -> produce -> commit loop with no work in between.

    With ``fanout`` > 1 ((a-fan)), the i-th record is forwarded to the first
    ``floor((i + 1) * fanout) - floor(i * fanout)`` topics of ``topics_out``:
    ``fanout`` records out per record in, on average, as a new account sends.
    """
    if fanout > len(topics_out):
        raise ValueError(f"a fan-out of {fanout:.2f} needs more than {len(topics_out)} topics")
    consumer = AIOKafkaConsumer(
        topic_in,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        max_partition_fetch_bytes=4 * 1_048_576,
    )
    producer = bench_producer(bootstrap)
    await consumer.start()
    await producer.start()
    publisher = KafkaPublisher(producer)
    done, started = 0, 0.0
    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            if not batch:
                continue
            if not started:
                started = time.perf_counter()
            records = [r for rs in batch.values() for r in rs]
            out: list[OutMessage] = []
            for i, r in enumerate(records, start=done):
                copies = int((i + 1) * fanout) - int(i * fanout)
                out.extend(OutMessage(t, r.key, r.value, []) for t in topics_out[:copies])
            await publisher.publish(out)
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
            done += len(records)
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for p in range(PARTITIONS):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


async def wait_for_commits(
    bootstrap: str, group: str, topic: str, total: int, limit: float = 600
) -> float:
    """Events/s from the first commit seen until every record is committed (startup excluded)."""
    deadline = time.monotonic() + limit
    first: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        done = await committed_total(bootstrap, group, topic)
        now = time.perf_counter()
        if done and first is None:
            first = (now, done)
        if done >= total:
            assert first is not None
            span = now - first[0]
            return (done - first[1]) / span if span > 0 else float("inf")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{group}: only {await committed_total(bootstrap, group, topic)} of {total}")


async def timed_run(
    bootstrap: str, group: str, topic: str, data: list[tuple[bytes, bytes]], before: int = 0
) -> float:
    """Events/s of a running worker: warm it up, then time producing and processing all.

    The first record is sent alone and awaited, so the worker's startup is
    not counted (with several processes, call ``settle`` first so the group
    has formed); producing (~400k/s) is far faster than the
    worker, so the span measures the worker. ``before``: records already
    committed on ``topic`` by earlier phases.
    """
    await produce(bootstrap, topic, data[:1])
    await wait_for_commits(bootstrap, group, topic, before + 1, limit=120)
    started = time.perf_counter()
    await produce(bootstrap, topic, data[1:])
    await wait_for_commits(bootstrap, group, topic, before + len(data))
    return (len(data) - 1) / (time.perf_counter() - started)


def start_worker(env: dict[str, str], name: str, log_dir: Path) -> subprocess.Popen[bytes]:
    """``import-worker run --processes BENCH_WORKER_PROCESSES`` (default: one per core)."""
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [str(BIN / "import-worker"), "run", "--processes", str(worker_processes())],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def worker_processes() -> int:
    return env_int("BENCH_WORKER_PROCESSES", os.cpu_count() or 1)


def worker_pids(pid: int) -> list[int]:
    """The worker processes of ``pid`` (its children under ``--processes``; else itself)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(p) for p in children.read_text().split()] if children.exists() else []
    return found or [pid]


def _status_mb(pid: int, field: str) -> float:
    """The largest ``field`` (VmHWM: peak RSS, VmRSS: RSS now) of the worker processes."""
    values = [
        int(line.split()[1]) / 1024
        for one in worker_pids(pid)
        for line in Path(f"/proc/{one}/status").read_text().splitlines()
        if line.startswith(f"{field}:")
    ]
    return max(values, default=float("nan"))


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def faust_passthrough(
    bootstrap: str, topic_in: str, topic_out: str, total: int, log_dir: Path
) -> float:
    """(d): a Faust agent forwarding one event at a time; rate measured on its output."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "BENCH_IN": topic_in,
        "BENCH_OUT": topic_out,
        "BENCH_GROUP": "bench-faust",
    }
    log = (log_dir / "faust.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "faust_passthrough.py"),
            "worker",
            "-l",
            "warn",
            "--without-web",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=str(log_dir),
    )
    consumer = AIOKafkaConsumer(
        topic_out, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        deadline = time.monotonic() + 600
        while seen < total and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            n = sum(len(v) for v in batch.values())
            if n and not first:
                first = time.perf_counter()
                seen = 0  # the rate counts from the first record out
            seen += n
        return seen / (time.perf_counter() - first)
    finally:
        await consumer.stop()
        stop(proc)


@dataclass(frozen=True)
class Latency:
    """Discovery -> decision, and one trip through the broker alone, at the same time."""

    p50: float
    p99: float
    broker_p50: float
    broker_p99: float
    broker_first_p50: float  # the trips sent in the first second timed
    broker_last_p50: float  # and in the last one
    peak_rss: float


def _first_last_p50(trips: list[tuple[float, float]]) -> tuple[float, float]:
    """p50 (ms) of the trips sent in the first and in the last second of ``trips``.

    Tansu's fetch slows as a partition holds more record batches (every
    discovery here is one): the same trip gets slower while the probe runs.
    """
    start, end = min(t for t, _ in trips), max(t for t, _ in trips)
    first = [d for t, d in trips if t < start + 1]
    last = [d for t, d in trips if t > end - 1]
    return statistics.median(first) * 1000, statistics.median(last) * 1000


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    quantiles = statistics.quantiles(samples, n=100)
    return quantiles[49] * 1000, quantiles[98] * 1000


async def latency(
    bootstrap: str, env: dict[str, str], sim: AgentSimulator, rate: int, seconds: int, log_dir: Path
) -> Latency:
    """Discovery -> decision latency at a fixed rate; and the worker's peak RSS.

    The baseline, in the same run: every tenth discovery, the bench also sends
    itself a record through the broker (a topic of its own, read by the same
    consumer). A discovery makes two such trips (to the worker, and its
    decision back): a rough baseline for the first figure (quantiles of two
    legs do not add up exactly). The trips of the first and of the last second
    show how much the broker itself slowed during the probe.
    """
    topic_in, decisions = "bench.latency.in", "bench.latency.decisions"
    control = "bench.latency.control"
    await ensure_topics(bootstrap, [topic_in, decisions, control], PARTITIONS)
    worker = start_worker(
        {
            **env,
            "TOPIC_ACCOUNT_DISCOVERED": topic_in,
            "TOPIC_IMPORT_DECISIONS": decisions,
            "WORKER_GROUP_ID": "bench-latency",
        },
        "latency",
        log_dir,
    )
    consumer = AIOKafkaConsumer(
        decisions,
        control,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        await produce(bootstrap, topic_in, [(d.key, d.value) for d in sim.stream(1)])
        await wait_for_commits(bootstrap, "bench-latency", topic_in, 1, limit=120)
        sim.rediscovery_rate = 0.0
        samples: list[float] = []
        trips: list[tuple[float, float]] = []  # (sent at, duration)
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False
        )
        await producer.start()
        sent_at: dict[str, float] = {}

        # The first seconds at the rate are not timed: every worker process is
        # still joining the group then (a rebalance pauses the partitions moved).
        warm_up = rate * LATENCY_WARM_UP_SECONDS

        async def send() -> None:
            start = time.perf_counter()
            for i in range(warm_up + rate * seconds):
                d = sim.next()
                if i >= warm_up:
                    sent_at[d.account.external_id] = time.perf_counter()
                await producer.send(topic_in, d.value, key=d.key)
                if i >= warm_up and i % 10 == 0:
                    trip = json.dumps({"sent": time.perf_counter()}).encode()
                    await producer.send(control, trip, key=str(i).encode())
                ahead = (i + 1) / rate - (time.perf_counter() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)

        sender = asyncio.create_task(send())
        deadline = time.monotonic() + LATENCY_WARM_UP_SECONDS + seconds + 30
        while len(samples) < rate * seconds and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    if r.topic == control:
                        sent = json.loads(r.value)["sent"]
                        trips.append((sent, now - sent))
                        continue
                    ext = json.loads(r.value)["data"]["account"]["external_id"]
                    if ext in sent_at:
                        samples.append(now - sent_at[ext])
        await sender
        await producer.stop()
        rss = peak_rss_mb(worker.pid)
        return Latency(
            *_p50_p99(samples),
            *_p50_p99([d for _, d in trips]),
            *_first_last_p50(trips),
            peak_rss=rss,
        )
    finally:
        await consumer.stop()
        stop(worker)


async def first_after_idle(
    bootstrap: str, env: dict[str, str], sim: AgentSimulator, idle: float, log_dir: Path
) -> float:
    """Milliseconds from one discovery to its decision, after ``idle`` seconds of nothing."""
    topic_in, decisions = "bench.idle.in", "bench.idle.decisions"
    await ensure_topics(bootstrap, [topic_in, decisions], PARTITIONS)
    worker = start_worker(
        {**env, "TOPIC_ACCOUNT_DISCOVERED": topic_in, "TOPIC_IMPORT_DECISIONS": decisions,
         "WORKER_GROUP_ID": "bench-idle"},
        "idle",
        log_dir,
    )  # fmt: skip
    consumer = AIOKafkaConsumer(
        decisions, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False
    )
    await consumer.start()
    await producer.start()
    sim.rediscovery_rate = 0.0

    async def one() -> float:
        d = sim.next()
        start = time.perf_counter()
        await producer.send_and_wait(topic_in, d.value, key=d.key)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    if json.loads(r.value)["data"]["account"]["external_id"] == (
                        d.account.external_id
                    ):
                        return (time.perf_counter() - start) * 1000
        raise TimeoutError("no decision")

    try:
        await one()  # warm: the group joined, the topics' metadata known
        await asyncio.sleep(idle)
        return await one()
    finally:
        await producer.stop()
        await consumer.stop()
        stop(worker)


async def main() -> None:
    events = env_int("BENCH_EVENTS", 200_000)
    share = float(os.environ.get("BENCH_REDISCOVERY", "0.9"))
    faust_events = env_int("BENCH_FAUST_EVENTS", 20_000)
    rate, rate_seconds = env_int("BENCH_RATE", 1000), env_int("BENCH_RATE_SECONDS", 10)
    new_events = max(1, int(events * (1 - share)))
    old_events = events - new_events
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    print(
        f"bench: {events} events ({new_events} new, {old_events} rediscoveries), "
        f"worker --processes {worker_processes()}; logs in {tmp}"
    )

    with (
        LocalBroker(log_path=tmp / "tansu.log") as broker,
        LocalPostgres(tmp / "pg", throwaway=True) as pg,
    ):
        bootstrap, dsn = broker.bootstrap, pg.dsn()
        await migrate(dsn, "import_worker", "services.import_worker.adapters.migrations")
        customers = await seed(dsn, 50)
        sim = AgentSimulator(PARTNER, customers, rediscovery_rate=0.0, seed=7)
        fresh = [(d.key, d.value) for d in sim.stream(new_events)]
        sim.rediscovery_rate = 1.0
        again = [(d.key, d.value) for d in sim.stream(old_events)]
        topics = [
            "bench.raw.in",
            "bench.raw.out",
            "bench.fanout.in",
            *FANOUT_TOPICS,
            "bench.worker.in",
            "bench.faust.in",
            "bench.faust.out",
        ]
        await ensure_topics(bootstrap, topics, PARTITIONS)

        await produce(bootstrap, "bench.raw.in", again)
        raw = await raw_passthrough(bootstrap, "bench.raw.in", ["bench.raw.out"], len(again))
        print(f"(a) raw aiokafka passthrough     {raw:10.0f} ev/s")

        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": dsn,
            "SESSION_TIMEOUT_MS": "2000",
            "HEARTBEAT_INTERVAL_MS": "500",
            "REBALANCE_TIMEOUT_MS": "2000",
            "FAUST_SESSION_TIMEOUT_SECONDS": "2",
            "FAUST_HEARTBEAT_INTERVAL_SECONDS": "0.5",
            "FAUST_REBALANCE_TIMEOUT_SECONDS": "2",
            "TOPIC_PARTITIONS": str(PARTITIONS),
            "LOG_LEVEL": "WARNING",
        }
        results: dict[str, float] = {}
        # One worker for both phases, as in production: the accounts it imported
        # are the ones its agents report again.
        topic = "bench.worker.in"
        worker_port = free_port_run(worker_processes())
        worker = start_worker(
            {
                **env,
                "TOPIC_ACCOUNT_DISCOVERED": topic,
                "WORKER_GROUP_ID": "bench-worker",
                "WORKER_HTTP_PORT": str(worker_port),
            },
            "worker",
            tmp,
        )
        try:
            warm = await settle(bootstrap, topic, fresh, worker_port, worker_processes())
            await wait_for_commits(bootstrap, "bench-worker", topic, warm, limit=120)
            fresh = fresh[warm:]
            decided = warm + len(fresh)
            results["new"] = await timed_run(bootstrap, "bench-worker", topic, fresh, warm)
            sent_per_new = await records_per_decision(worker_port, worker_processes())
            rss_new = rss_mb(worker.pid)
            results["old"] = await timed_run(bootstrap, "bench-worker", topic, again, decided)
            rss_all = rss_mb(worker.pid)
        finally:
            stop(worker)
        print(f"(c) worker, new accounts         {results['new']:10.0f} ev/s")
        print(f"(b) worker, rediscoveries        {results['old']:10.0f} ev/s")
        # (a-fan): the raw loop sending as many records per event as (c) did.
        await produce(bootstrap, "bench.fanout.in", fresh)
        fanout = await raw_passthrough(
            bootstrap,
            "bench.fanout.in",
            FANOUT_TOPICS,
            len(fresh),
            group="bench-fanout",
            fanout=sent_per_new,
        )
        print(
            f"(a-fan) raw, {sent_per_new:.2f} records out per event {fanout:7.0f} ev/s"
            " (as many as (c) sent per new account)"
        )
        print(
            f"worker RSS (largest process): {rss_new:.0f} MB after {decided} events, "
            f"{rss_all:.0f} MB after {events} ({rss_all / rss_new:.2f}x)"
        )

        # (e) the policy service's read model, on the decisions (c) produced.
        projected, reported = await projected_rate(
            bootstrap, dsn, "import.decisions", decided, PARTITIONS
        )
        print(f"(e) read model, accounts projected {projected:8.0f} accounts/s (decisions)")
        print(f"    and their commands' results    {reported:8.0f} results/s")

        await produce(bootstrap, "bench.faust.in", again[:faust_events])
        faust_rate = await faust_passthrough(
            bootstrap, "bench.faust.in", "bench.faust.out", min(faust_events, len(again)), tmp
        )
        print(f"(d) Faust per-event passthrough  {faust_rate:10.0f} ev/s")

        ports = {"WORKER_HTTP_PORT": str(free_port_run(worker_processes()))}
        lat = await latency(bootstrap, {**env, **ports}, sim, rate, rate_seconds, tmp)
        p99 = lat.p99
        print(
            f"latency at {rate} ev/s: p50 {lat.p50:.1f} ms, p99 {lat.p99:.1f} ms; "
            f"worker peak RSS {lat.peak_rss:.0f} MB"
        )
        print(
            f"    one trip through the broker meanwhile: p50 {lat.broker_p50:.1f} ms,"
            f" p99 {lat.broker_p99:.1f} ms (a decision makes two);"
            f" p50 {lat.broker_first_p50:.1f} ms in the first second, {lat.broker_last_p50:.1f}"
            " in the last"
        )
        idle = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
        ports = {"WORKER_HTTP_PORT": str(free_port_run(worker_processes()))}
        after_idle = await first_after_idle(bootstrap, {**env, **ports}, sim, idle, tmp)
        print(f"first decision after {idle:.0f} s idle: {after_idle:.0f} ms")
        b_a, c_a, b_d = results["old"] / raw, results["new"] / raw, results["old"] / faust_rate
        print(
            f"targets: b/a >= 0.6 ({b_a:.2f}), c/a >= 0.15 ({c_a:.2f}), b/d >= 10 ({b_d:.1f}),"
            f" p99 <= 50 ms ({p99:.0f}), after idle <= 100 ms ({after_idle:.0f}),"
            f" RSS flat within 10 % ({rss_all / rss_new:.2f})"
        )
        print(
            f"RATIOS rediscovery/raw={b_a:.2f} new/raw={c_a:.2f} rediscovery/faust={b_d:.1f}"
            f" new/raw_fanout={results['new'] / fanout:.2f}"
            f" p99/broker_trip_p99={lat.p99 / lat.broker_p99:.2f}"
            f" broker_trip_last/first={lat.broker_last_p50 / lat.broker_first_p50:.1f}"
            f" projected/decided={projected / results['new']:.2f}"
            f" rss_growth={rss_all / rss_new:.2f}"
        )


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()


__all__: list[Any] = []
