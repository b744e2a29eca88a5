"""The Docker-free stack works: broker, topics, PostgreSQL, and ``msp-import-dev up``."""

import asyncio
import contextlib
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.devstack import broker as broker_module
from services.infra.devstack import postgres as postgres_module
from services.infra.devstack.net import accepts_connections, free_port, port_is_free
from services.infra.devstack.summary import READY_LINE
from services.infra.kafka_admin import broker_reachable, ensure_topics


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def fetch_value(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_broker_round_trip(kafka_bootstrap: str) -> None:
    topic = unique("devstack-roundtrip")
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, sent.partition)])
        async with asyncio.timeout(10):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value, record.offset) == (b"k1", b"hello", sent.offset)


async def test_ensure_topics_creates_requested_partitions_and_is_idempotent(
    kafka_bootstrap: str,
) -> None:
    names = [unique("devstack-a"), unique("devstack-b")]

    created = await ensure_topics(kafka_bootstrap, [*names, names[0]], partitions=3)
    again = await ensure_topics(kafka_bootstrap, names, partitions=5)

    assert sorted(created) == sorted(names)
    assert again == []
    assert await partition_counts(kafka_bootstrap, names) == dict.fromkeys(names, 3)


async def test_ensure_topics_tolerates_a_concurrent_creator(kafka_bootstrap: str) -> None:
    topic = unique("devstack-race")

    results = await asyncio.gather(*(ensure_topics(kafka_bootstrap, [topic], 2) for _ in range(3)))

    assert [name for created in results for name in created] == [topic]  # once, nobody failed
    assert await partition_counts(kafka_bootstrap, [topic]) == {topic: 2}


async def test_broker_reachable_is_false_without_broker() -> None:
    assert not await broker_reachable(f"127.0.0.1:{free_port()}", timeout=1)


async def test_local_broker_restart_comes_back_empty(tmp_path: Path) -> None:
    with LocalBroker(log_path=tmp_path / "tansu.log") as local:
        topic = unique("devstack-lost")
        await ensure_topics(local.bootstrap, [topic], 1)
        port = local.port

        await asyncio.to_thread(local.restart)
        assert local.port == port
        assert topic not in await list_topics(local.bootstrap)  # memory storage

        await asyncio.to_thread(local.kill)
        assert not await broker_reachable(local.bootstrap, timeout=1)
        await asyncio.to_thread(local.start)
        assert await broker_reachable(local.bootstrap)
    assert not local.running
    assert not accepts_connections(port)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port bound but not listening: connecting fails, binding it fails too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


async def test_local_broker_moves_to_another_automatic_port_when_it_was_taken(
    held_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = iter([held_port, free_port()])
    monkeypatch.setattr(broker_module, "free_port", lambda: next(picks))

    with LocalBroker(log_path=tmp_path / "tansu.log") as local:
        assert local.port != held_port
        assert await broker_reachable(local.bootstrap)
    assert "AddrInUse" in (tmp_path / "tansu.log").read_text()  # the first try failed


async def test_local_postgres_moves_to_another_automatic_port_when_it_was_taken(
    held_port: int, pg_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = iter([held_port, free_port()])
    monkeypatch.setattr(postgres_module, "free_port", lambda: next(picks))

    server = LocalPostgres(pg_tmp_path / "pgdata", throwaway=True)
    with server:
        assert server.port != held_port
        assert await fetch_value(server.dsn(), "SELECT 1") == 1
    assert "Address already in use" in server.log_path.read_text()


async def test_postgres_fixture_serves_the_session_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == urlsplit(database_url).path[1:]
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
    finally:
        await conn.close()


async def test_local_postgres_restart_and_crash_keep_committed_data(pg_tmp_path: Path) -> None:
    server = LocalPostgres(pg_tmp_path / "pgdata", throwaway=True)
    with server:
        dsn = server.create_database("kept")
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('before')")
        await conn.close()
        port = server.port

        await asyncio.to_thread(server.restart)
        assert server.port == port
        assert await fetch_value(dsn, "SELECT string_agg(v, ',') FROM t") == "before"

        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        assert await fetch_value(dsn, "SELECT count(*) FROM t") == 1
    assert not server.running
    assert not accepts_connections(port)


# -- msp-import-dev up --------------------------------------------------------


class LineReader:
    """Reads a child's stdout on a thread so the test can wait with a timeout."""

    def __init__(self, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False

    def rest(self) -> list[str]:
        self._thread.join(timeout=10)
        while not self._lines.empty():
            line = self._lines.get()
            if line is not None:
                self.seen.append(line)
        return self.seen


def gone(pid: int) -> bool:
    """Not running; a zombie counts as gone (PID 1 here does not reap orphans)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def process_tree(pid: int) -> set[int]:
    try:
        root = psutil.Process(pid)
        return {pid} | {child.pid for child in root.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def quiet_ports(count: int) -> list[int]:
    """Free ports below the ephemeral range (32768+ on Linux).

    ``up`` binds its ports a second or more after we pick them; an ephemeral
    port could meanwhile become some process's outgoing connection under load.
    """
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 32000)
        if port not in ports and port_is_free(port):
            ports.append(port)
    return ports


@dataclass
class DevUp:
    """A running ``msp-import-dev up`` and where it puts things.

    ``tee`` is the process ``up``'s stdout is piped into (``make run | tee
    run.log``) when the test asked for one (``indirect`` parameter "tee");
    then ``stdout_log`` is the file it writes and ``proc.stdout`` is None.
    """

    proc: "subprocess.Popen[str]"
    ports: dict[str, int]
    data_dir: Path
    stderr_path: Path
    tee: "subprocess.Popen[bytes] | None" = None
    stdout_log: Path | None = None

    def postmaster(self) -> int | None:
        try:
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def all_pids(self) -> set[int]:
        """Every process of the stack: ``up``'s descendants, and the detached postmaster's."""
        postmaster = self.postmaster()
        pids = process_tree(self.proc.pid)
        if postmaster is not None:
            pids |= process_tree(postmaster)
        pids.discard(self.proc.pid)
        return pids

    def children(self) -> dict[int, str]:
        """pid -> command line of what ``up`` started itself (broker, services)."""
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return {}
        found: dict[int, str] = {}
        for kid in kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                found[kid.pid] = " ".join(kid.cmdline())
        return found

    def wait_ready(self, timeout: float = 120) -> None:
        """Until ``up`` printed its summary (through ``tee``'s file when there is one)."""
        if self.stdout_log is None:
            reader = LineReader(self.proc)
            ready = reader.wait_for(READY_LINE, timeout)
            seen = reader.seen
        else:
            log = self.stdout_log
            deadline = time.monotonic() + timeout
            while not (ready := READY_LINE in read_text(log)):
                if time.monotonic() >= deadline or self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            seen = [read_text(log)]
        assert ready, "\n".join([*seen, "--- stderr:", self.stderr_path.read_text()])


def read_text(path: Path) -> str:
    """The file's text; "" while it does not exist yet (``tee`` creates it when it starts)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def service_pids(stack: DevUp) -> set[int]:
    """The children of ``up`` that are the two services, and whatever they started."""
    services = [
        pid
        for pid, cmdline in stack.children().items()
        if "policy-service run" in cmdline or "import-worker run" in cmdline
    ]
    assert len(services) == 2, stack.children()
    return {pid for root in services for pid in process_tree(root)}


def wait_all_gone(pids: set[int], timeout: float) -> set[int]:
    """Poll until none of ``pids`` runs; the ones still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := {pid for pid in pids if not gone(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def describe(pids: set[int]) -> list[str]:
    described = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            described.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
    return described


def sweep_leftovers(stack: DevUp, workdir: Path) -> None:
    """Whatever a failed test left running: processes started in ``workdir`` (``up``'s
    cwd, which its children inherit) are killed; a PostgreSQL it left is stopped."""
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.cwd() == str(workdir):
                process.kill()
    postmaster = stack.postmaster()
    if postmaster is not None and not gone(postmaster):
        with contextlib.suppress(psutil.NoSuchProcess):
            server = psutil.Process(postmaster)
            server.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                server.wait(30)
            except psutil.TimeoutExpired:
                server.kill()


@pytest.fixture
def dev_up(request: pytest.FixtureRequest, tmp_path: Path, pg_tmp_path: Path) -> Iterator[DevUp]:
    """``msp-import-dev up`` on free ports and a temp data dir; stopped however the test ends.

    Its stdout is a pipe the test reads, or (indirect parameter ``"tee"``) a
    pipe into a ``tee`` process, as in ``make run | tee run.log``.
    """
    ports = dict(zip(("broker", "postgres", "http", "worker"), quiet_ports(4), strict=True))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "AUTH_JWT_SECRET"}
    }
    env.update(HTTP_PORT=str(ports["http"]), WORKER_HTTP_PORT=str(ports["worker"]))
    data_dir, stderr_path = pg_tmp_path / "data", tmp_path / "up.stderr"
    command = [
        str(Path(sys.executable).parent / "msp-import-dev"),
        "up",
        "--data-dir",
        str(data_dir),
        "--broker-port",
        str(ports["broker"]),
        "--postgres-port",
        str(ports["postgres"]),
    ]
    tee: subprocess.Popen[bytes] | None = None
    stdout_log: Path | None = None
    with stderr_path.open("w") as stderr:
        if getattr(request, "param", "pipe") == "tee":
            stdout_log = tmp_path / "run.log"
            read_end, write_end = os.pipe()
            try:
                tee = subprocess.Popen(
                    ["tee", str(stdout_log)], stdin=read_end, stdout=subprocess.DEVNULL
                )
                proc = subprocess.Popen(
                    command, stdout=write_end, stderr=stderr, text=True, env=env, cwd=tmp_path
                )
            finally:
                os.close(read_end)
                os.close(write_end)
        else:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path
            )
    stack = DevUp(proc, ports, data_dir, stderr_path, tee, stdout_log)
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            leftovers = stack.all_pids()
            stack.proc.send_signal(signal.SIGTERM)
            try:
                stack.proc.wait(60)
            except subprocess.TimeoutExpired:
                stack.proc.kill()
                stack.proc.wait()
                for pid in leftovers:  # ``up`` hung: do its job
                    with contextlib.suppress(psutil.NoSuchProcess):
                        psutil.Process(pid).kill()
        if stack.proc.stdout is not None:
            stack.proc.stdout.close()
        if tee is not None and tee.poll() is None:
            tee.kill()
            tee.wait()
        sweep_leftovers(stack, tmp_path)


def test_dev_up_prints_summary_and_stops_everything_on_ctrl_c(dev_up: DevUp) -> None:
    reader = LineReader(dev_up.proc)
    began = time.monotonic()

    ready = reader.wait_for(READY_LINE, timeout=120)
    assert ready, "\n".join([*reader.seen, "--- stderr:", dev_up.stderr_path.read_text()])
    startup = time.monotonic() - began
    summary = "\n".join(reader.seen)
    ports = dev_up.ports
    assert f"127.0.0.1:{ports['broker']}" in summary
    assert f"postgresql://postgres@127.0.0.1:{ports['postgres']}/postgres" in summary
    assert "export TOKEN=" in summary
    assert accepts_connections(ports["broker"])
    assert accepts_connections(ports["postgres"])
    pids = dev_up.all_pids()
    assert dev_up.postmaster() in pids

    dev_up.proc.send_signal(signal.SIGINT)
    assert dev_up.proc.wait(60) == 0
    output = "\n".join(reader.rest())

    assert output.rstrip().endswith("stopped"), output
    left = {pid for pid in pids if not gone(pid)}
    assert not left, [psutil.Process(pid).cmdline() for pid in left]
    for name, port in ports.items():
        assert not accepts_connections(port), f"{name} port {port} still open"
    print(f"\nmsp-import-dev up printed its summary after {startup:.2f} s")


def test_dev_up_children_die_when_up_is_killed(dev_up: DevUp) -> None:
    # SIGKILL: no handler, no atexit, no shutdown; only the kernel can tell the children.
    dev_up.wait_ready()
    children = dev_up.children()
    assert any("tansu" in cmdline for cmdline in children.values()), children
    services = service_pids(dev_up)
    tied = set(children) | services

    began = time.monotonic()
    dev_up.proc.kill()
    dev_up.proc.wait(10)
    left = wait_all_gone(tied, timeout=15)
    took = time.monotonic() - began

    assert not left, describe(left)
    for name in ("broker", "http", "worker"):
        port = dev_up.ports[name]
        assert not accepts_connections(port), f"{name} port {port} still open"
    print(f"\nbroker and services exited {took:.2f} s after up was SIGKILLed")


@pytest.mark.parametrize("dev_up", ["tee"], indirect=True)
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_dev_up_stops_everything_in_order_after_its_stdout_reader_died(
    dev_up: DevUp, stop_signal: signal.Signals
) -> None:
    # ``make run | tee run.log``, then Ctrl-C: tee dies with us, and every line ``up``
    # prints while it shuts down meets a broken pipe.
    assert dev_up.tee is not None
    dev_up.wait_ready()
    pids = dev_up.all_pids()
    assert dev_up.postmaster() in pids
    services = service_pids(dev_up)

    dev_up.tee.kill()
    dev_up.tee.wait()
    dev_up.proc.send_signal(stop_signal)
    code = dev_up.proc.wait(60)

    stderr = dev_up.stderr_path.read_text()
    assert code == 0, stderr
    assert "BrokenPipeError" not in stderr, stderr
    # What could not go to stdout went to stderr, in the order shutdown ran.
    steps = ["stopping services ...", "stopping the broker ...", "stopping PostgreSQL ..."]
    lines = stderr.splitlines()
    assert [line for line in lines if line in steps] == steps, stderr
    assert lines[-1] == "stopped", stderr
    left = {pid for pid in pids | services if not gone(pid)}
    assert not left, describe(left)
    for name, port in dev_up.ports.items():
        assert not accepts_connections(port), f"{name} port {port} still open"


def test_a_broker_started_from_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits: the
    # broker must be forked by a thread that lives as long as the process.
    broker = LocalBroker(log_path=tmp_path / "tansu.log")
    starter = threading.Thread(target=broker.start)
    starter.start()
    starter.join(60)
    try:
        assert broker.running
        time.sleep(1.0)
        assert broker.running, (tmp_path / "tansu.log").read_text()
        assert accepts_connections(broker.port)
    finally:
        broker.stop()


def _get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def _poll(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.3)
    return found


def test_dev_up_sends_welcome_emails_and_applies_password_changes_everywhere(
    dev_up: DevUp,
) -> None:
    """The demo, as the README tells it: discoveries of the demo partner's customers end
    with welcome emails in the dev SMTP sink; an agent's password changes reach IT Glue,
    the vault and Microsoft 365 (the simulators, and the handlers' own tables)."""
    reader = LineReader(dev_up.proc)
    assert reader.wait_for(READY_LINE, timeout=120), "\n".join(reader.seen)
    summary = "\n".join(reader.seen)
    token = re.search(r"export TOKEN='([^']+)'", summary)
    sims = re.search(r"simulators\s+(http://\S+)", summary)
    dsn = re.search(r"DATABASE_URL\s+(\S+)", summary)
    assert token, summary
    assert sims, summary
    assert dsn, summary
    api = f"http://127.0.0.1:{dev_up.ports['http']}"
    customers = {c["name"]: c["id"] for c in _get_json(f"{api}/v1/customers", token[1])["items"]}
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{dev_up.ports['broker']}",
        "DATABASE_URL": dsn[1],
    }
    cli = str(Path(sys.executable).parent / "import-worker")
    for name in ("Contoso Ltd", "Woodgrove Bank"):  # IT Glue; no documentation: the vault
        subprocess.run(
            [cli, "simulate", "--partner", "demo-partner", "--customer", customers[name],
             "--count", "12", "--rediscover", "0", "--admin-share", "0.5", "--seed", "3"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    mail = _poll(lambda: _get_json(f"{sims[1]}/smtp/messages"), "a welcome email in the sink")
    assert all("Demo MSP" in m["subject"] for m in mail)
    assert all(m["message_id"].endswith("@demo-msp.example>") for m in mail)

    async def imported() -> int:
        conn = await asyncpg.connect(dsn[1])
        try:
            return int(await conn.fetchval("SELECT count(*) FROM import_worker.ledger"))
        finally:
            await conn.close()

    _poll(lambda: asyncio.run(imported()) >= 24, "every account imported")

    # The read model shows them, with their commands' results, as the Accounts page does.
    def shown() -> dict[str, Any] | None:
        page: dict[str, Any] = _get_json(f"{api}/v1/accounts?limit=500", token[1])
        results = [c for a in page["items"] for c in a["commands"] if c["status"] != "pending"]
        linked = any(r["type"] == "psa.contact.link" and r["refs"] for r in results)
        welcomed = any(r["type"] == "notification.welcome_email.send" for r in results)
        return page if len(page["items"]) >= 24 and linked and welcomed else None

    page = _poll(shown, "the simulated accounts and their results in /v1/accounts")
    assert sum(page["counts"].values()) == len(page["items"]), page["counts"]
    assert page["counts"]["done"] > 0, page["counts"]

    for name in ("Contoso Ltd", "Woodgrove Bank"):
        changed = subprocess.run(
            [cli, "simulate-password-change", "--customer", customers[name], "--count", "12",
             "--secrets-key-file", str(dev_up.data_dir / "secrets_key")],
            env=env, check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "sent 12 account.password.changed events" in changed.stdout

    def graph_sets() -> int:
        return len(_get_json(f"{sims[1]}/graph/_sim/state")["password_changes"])

    _poll(graph_sets, "a Microsoft 365 password set")

    async def handlers_state() -> tuple[int, int, int]:
        conn = await asyncpg.connect(dsn[1])
        try:
            row = await conn.fetchrow(
                """SELECT
                    (SELECT count(*) FROM handlers.password_changes
                        WHERE target = 'documentation') AS docs,
                    (SELECT count(*) FROM handlers.vault_entries WHERE version >= 1) AS vault,
                    (SELECT count(*) FROM handlers.password_changes WHERE target = 'm365') AS m365
                """
            )
            return int(row["docs"]), int(row["vault"]), int(row["m365"])
        finally:
            await conn.close()

    def all_three() -> tuple[int, int, int] | None:
        state = asyncio.run(handlers_state())
        return state if all(state) else None

    # documentation entries updated, vault secrets set, Microsoft 365 passwords set
    _poll(all_three, "the changes at IT Glue, the vault and Microsoft 365")
    itglue = _get_json(f"{sims[1]}/itglue/_sim/state")
    assert any(entry["attributes"].get("password") for entry in itglue["passwords"])
