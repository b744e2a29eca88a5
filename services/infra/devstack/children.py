"""The service processes ``msp-import-dev up`` runs, and how it watches and stops them.

Each child runs in a session of its own (so the terminal's Ctrl-C reaches only
``up``, which stops children first, then the broker, then PostgreSQL) and
writes to a log file of its own under ``<data-dir>/logs``, which keeps the
summary readable and lets ``up`` quote a failing command's last line.

A session of its own would let a child outlive ``up`` when ``up`` is killed
(SIGKILL, a crash) or dies before it stops them; on Linux every child is
therefore tied to ``up`` with ``PR_SET_PDEATHSIG`` and gets SIGTERM when ``up``
dies, however it dies.
"""

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.infra.devstack.net import LOOPBACK
from services.infra.devstack.procs import log_tail, signal_group, spawn_tied, terminate_group


@dataclass(frozen=True)
class ServiceSpec:
    """A service console script and the port its ``/healthz`` answers on."""

    name: str
    port: int
    health_path: str = "/healthz"

    @property
    def health_url(self) -> str:
        """Where to probe liveness."""
        return f"http://{LOOPBACK}:{self.port}{self.health_path}"


def script_path(name: str) -> Path:
    """A console script of this project, from the venv that runs ``msp-import-dev``."""
    return Path(sys.executable).parent / name


class ChildProcesses:
    """Every process ``up`` spawns, so that none can be left behind."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self._log_dir = log_dir
        self._env = env
        self._procs: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}

    def log_path(self, name: str) -> Path:
        """The log file of service ``name`` (``migrate`` and ``run`` both append to it)."""
        return self._log_dir / f"{name}.log"

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``name args...`` in a new session, output appended to its log file.

        The child gets SIGTERM if ``up`` dies without stopping it (Linux; see
        :func:`~services.infra.devstack.procs.spawn_tied`).
        """
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as log_file:
            log_file.write(f"--- {time.strftime('%F %T')} {name} {' '.join(args)}\n".encode())
            log_file.flush()
            proc = spawn_tied([str(script_path(name)), *args], output=log_file, env=self._env)
        self._procs[proc.pid] = (name, proc)
        return proc

    def spawn_command(
        self, name: str, command: list[str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Like :meth:`spawn`, for a command that is not one of this project's scripts."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as log_file:
            log_file.write(f"--- {time.strftime('%F %T')} {' '.join(command)}\n".encode())
            log_file.flush()
            proc = spawn_tied(command, output=log_file, env=self._env, cwd=cwd)
        self._procs[proc.pid] = (name, proc)
        return proc

    async def run(self, name: str, *args: str, limit: float) -> int:
        """Run a one-shot command (``migrate``) to completion; -1 after ``limit`` s (killed)."""
        proc = self.spawn(name, *args)
        deadline = time.monotonic() + limit
        while proc.poll() is None:
            if time.monotonic() >= deadline:
                await asyncio.to_thread(terminate_group, proc, 5.0)
                self._procs.pop(proc.pid, None)
                return -1
            await asyncio.sleep(0.05)
        self.reap()
        return proc.returncode

    def reap(self) -> list[tuple[str, int]]:
        """Forget children that exited, killing anything left in their groups; (name, code) each.

        Called as soon as an exit is noticed: once a group is empty its id may
        be reused, so a late sweep could hit an unrelated process group.
        """
        exited: list[tuple[str, int]] = []
        for pid, (name, proc) in list(self._procs.items()):
            code = proc.poll()
            if code is not None:
                signal_group(pid, signal.SIGKILL)
                del self._procs[pid]
                exited.append((name, code))
        return exited

    def last_line(self, name: str) -> str:
        """The last line of a service's log, to say why it failed."""
        tail = log_tail(self.log_path(name), lines=1)
        return tail.strip()

    async def terminate_all(self, grace: float = 10.0) -> None:
        """SIGTERM every child's process group at once, SIGKILL after ``grace`` seconds."""
        self.reap()
        procs = [proc for _, proc in self._procs.values()]
        self._procs = {}
        await asyncio.gather(*(asyncio.to_thread(terminate_group, p, grace) for p in procs))


async def http_ok(port: int, path: str, limit: float = 1.0) -> bool:
    """Whether ``GET path`` on 127.0.0.1:port answers 200 (a dependency-free probe)."""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n".encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1] == b"200"
