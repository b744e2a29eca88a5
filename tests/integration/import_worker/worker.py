"""The import worker as a real subprocess (``import-worker run``) with topics, a consumer
group and an HTTP port of its own."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from schemas.topics import CHANNELS, TopicNames
from services.import_worker.settings import WorkerSettings
from services.infra.devstack.net import free_port_run
from services.infra.kafka_admin import ensure_topics

BIN = Path(sys.executable).parent
PARTITIONS = 4
FAST_GROUP = {
    "SESSION_TIMEOUT_MS": "2000",
    "HEARTBEAT_INTERVAL_MS": "500",
    "REBALANCE_TIMEOUT_MS": "2000",
    "FAUST_SESSION_TIMEOUT_SECONDS": "2",
    "FAUST_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "FAUST_REBALANCE_TIMEOUT_SECONDS": "2",
}
T = TypeVar("T")


async def wait_until(
    check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


def unique_topics(suffix: str) -> TopicNames:
    """Every contract topic renamed with ``suffix``."""
    return TopicNames(**{name: f"{getattr(TopicNames(), name)}.{suffix}" for name in CHANNELS})


@dataclass
class Worker:
    """An ``import-worker run`` subprocess with topics, group and port of its own."""

    bootstrap: str
    database_url: str
    log_dir: Path
    retry_delays: str = "[0.5,1,1]"
    extra_env: dict[str, str] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: int = 1  # ``run --processes N``: process i serves port + i
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.port = self.port or free_port_run(self.processes)
        self.topics = unique_topics(self.suffix)
        self.group = f"iw-test-{self.suffix}"
        self.retry_topic = f"import-worker.retry.{self.suffix}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        ours = {name.upper() for name in WorkerSettings.model_fields}
        env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("TOPIC_")}
        env.update(FAST_GROUP)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DATABASE_URL": self.database_url,
                "WORKER_HTTP_PORT": str(self.port),
                "WORKER_HTTP_HOST": "127.0.0.1",
                "WORKER_GROUP_ID": self.group,
                "RETRY_TOPIC": self.retry_topic,
                "RETRY_DELAYS_SECONDS": self.retry_delays,
                "TOPIC_PARTITIONS": str(PARTITIONS),
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update({f"TOPIC_{name.upper()}": getattr(self.topics, name) for name in CHANNELS})
        env.update(self.extra_env)
        return env

    async def create_topics(self) -> None:
        """Provision the topics first, as ``deploy/`` would; the worker finds them there."""
        await ensure_topics(
            self.bootstrap, [*self.topics.all_topics(), self.retry_topic], PARTITIONS
        )

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with (self.log_dir / f"worker-{self.suffix}-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "import-worker"), "run", "--processes", str(self.processes)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_dir,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit, no leave-group."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def children(self) -> list[int]:
        """The pids of the worker processes under ``--processes`` (N > 1)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.log_dir.glob(f"worker-{self.suffix}-*.log"))
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        return "\n".join(text.splitlines()[-lines:])

    async def get(self, session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        async with session.get(self.base_url + path) as resp:
            return resp.status, await resp.text()

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:
        async def ready() -> bool:
            assert self.alive(), f"the worker exited:\n{self.log_tail()}"
            with contextlib.suppress(aiohttp.ClientError):
                status, _ = await self.get(session, "/readyz")
                return status == 200
            return False

        await wait_until(ready, "the worker's /readyz", timeout=timeout, every=0.1)

    async def metric(self, session: aiohttp.ClientSession, sample: str) -> float:
        """The value of one sample line of ``/metrics`` (0 when absent)."""
        _, text = await self.get(session, "/metrics")
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
        return 0.0
