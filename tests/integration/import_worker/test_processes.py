"""``import-worker run --processes N``: N workers behind one command, sharing the groups.

The processes split the partitions between them; one SIGKILLed is started again and
nothing is lost or decided twice; SIGTERM stops them all; a process that cannot start
stops the command with an error instead of being restarted for ever."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from services.decision import decide
from services.import_worker.simulate import AgentSimulator

from .events import key_of, new_partner
from .support import Harness
from .test_crash import produce, seed
from .worker import BIN, PARTITIONS, wait_until

pytestmark = pytest.mark.timeout(180)


async def events_counted(http: aiohttp.ClientSession, port: int) -> float:
    """The sum of ``import_events_total`` of the process on ``port`` (0 if it is not up)."""
    with contextlib.suppress(aiohttp.ClientError):
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("import_events_total{")
        )
    return 0.0


def customers_on_every_partition(count: int = 5) -> list[uuid.UUID]:
    """``count`` customer ids whose keys the producer's partitioner puts on every one of
    the topic's partitions (each process of a group then has some to decide)."""
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    by_partition: dict[int, uuid.UUID] = {}
    while len(by_partition) < PARTITIONS:
        cid = uuid.uuid4()
        by_partition.setdefault(partitioner(str(cid).encode(), partitions, partitions), cid)
    return [*by_partition.values(), *(uuid.uuid4() for _ in range(count - PARTITIONS))]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not reaped by its parent yet) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


async def test_two_processes_split_the_work_and_a_killed_one_is_replaced(
    start_worker: Callable[..., Awaitable[Harness]],
    worker_db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    http: aiohttp.ClientSession,
) -> None:
    h = await start_worker(processes=2, extra_env={"BATCH_MAX_RECORDS": "100"})
    worker = h.worker
    first = await wait_until(lambda: len(worker.children()) == 2 and worker.children(), "2 pids")
    partner = new_partner()
    # Discoveries are keyed by customer: five random customers all land on one process's
    # partitions about one run in sixteen, and the other would have nothing to decide.
    customer_ids, inputs = await seed(worker_db, partner, customers_on_every_partition())
    sim = AgentSimulator(partner, customer_ids, rediscovery_rate=0.3, seed=515)
    events = list(sim.stream(4000))
    topic = h.topics.account_discovered

    counts: list[float] = []

    async def both_working() -> bool:
        counts[:] = [await events_counted(http, worker.port + i) for i in range(2)]
        return all(c > 0 for c in counts)

    # Discoveries keep coming until both have decided some: a process that joins
    # the group after the other has drained the topic would have nothing to do.
    landed: list[Any] = []
    fed = 0
    deadline = asyncio.get_running_loop().time() + 60
    while not await both_working():
        assert asyncio.get_running_loop().time() < deadline, (
            f"both processes deciding: events counted {counts} after {fed} discoveries\n"
            + worker.log_tail(80)
        )
        if fed < 3000:  # the rest is for after the kill
            landed += await produce(producer, topic, events[fed : fed + 50])
            fed += 50
        await asyncio.sleep(0.5)
    os.kill(first[0], signal.SIGKILL)
    landed += await produce(producer, topic, events[fed:])
    assert {m.partition for m in landed} == set(range(PARTITIONS)), "work for either process"

    async def replaced() -> list[int] | None:
        now = worker.children()
        return now if len(now) == 2 and first[0] not in now else None

    after = await wait_until(replaced, "the killed process started again", timeout=30)
    assert first[1] in after, "the other process kept running"
    await h.offsets.wait_past(topic, landed, timeout=90)
    await h.reader.drain()

    expected = {}
    for d in events:
        key = key_of(partner, d.account)
        if key not in expected:
            view, policies = inputs[d.account.customer_id]
            expected[key] = decide(d.account, view, policies[d.account.account_type])
    imported = {k for k, dec in expected.items() if dec.outcome.value == "imported"}
    rows = await worker_db.fetchval(
        "SELECT count(*) FROM import_worker.ledger WHERE partner_id = $1", partner
    )
    assert rows == len(imported)
    decided = {
        r.envelope["subject"]
        for r in h.reader.records
        if r.topic == h.topics.import_decisions and r.key and r.key.startswith(partner.encode())
    }
    assert decided == set(expected), "every account decided, by one process or the other"
    sent = {
        r.envelope["id"]
        for r in h.reader.records
        if r.topic.startswith("commands.") and r.key and r.key.startswith(partner.encode())
    }
    assert sent == {str(i) for k in imported for i in expected[k].command_ids()}

    async def all_ready() -> bool:  # the replacement serves too (it may still be starting)
        for i in range(2):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{worker.port + i}/readyz") as resp:
                    if resp.status == 200:
                        continue
            return False
        return True

    await wait_until(all_ready, "both processes ready", timeout=60, every=0.2)
    worker.stop()  # SIGTERM to the command: passed on, all stop, exit 0
    assert worker.proc is not None
    assert worker.proc.returncode == 0, worker.log_tail()
    assert all(gone(pid) for pid in after)


async def test_a_process_that_cannot_start_stops_the_command(
    start_worker: Callable[..., Awaitable[Harness]],
) -> None:
    h = await start_worker(run=False, processes=2)
    worker = h.worker
    with socket.socket() as taken:  # process 1's port is in use: it cannot serve
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", worker.port + 1))
        taken.listen()
        worker.start()
        assert worker.proc is not None
        code = await asyncio.to_thread(worker.proc.wait, 60)
    assert code != 0
    log = worker.log_tail(400)
    assert "a worker process exited while starting; stopping all" in log
    messages = [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]
    assert "a worker process exited; starting it again" not in messages


def test_processes_must_be_at_least_one() -> None:
    done = subprocess.run(
        [str(BIN / "import-worker"), "run", "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--processes" in done.stderr
