"""Process helpers shared by the broker, PostgreSQL and the ``up`` command.

Every long-running child of the dev stack is started in a session of its own,
so a Ctrl-C in the terminal reaches only ``msp-import-dev`` and it can stop the
children in order (services, then broker, then PostgreSQL) instead of all of
them dying at once.  Signalling the whole process group also reaps anything a
child started itself.

A session of its own also means nothing stops such a child when its parent
dies without stopping it (SIGKILL, a crash). :func:`spawn_tied` closes that
gap on Linux: the child asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``).
"""

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process gets when its parent dies."""

DEATH_SIGNAL = signal.SIGTERM
"""What a tied child gets when the process that started it dies: the services shut
down cleanly on it, as on ``up``'s own SIGTERM."""


class ManagedServer:
    """A local server used as ``with Server(...) as started:``: started on entry,
    stopped on exit, whatever happened in between."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages ("" when missing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_from(path: Path, offset: int) -> str:
    """A log file's text written after ``offset`` (what one run of a program wrote)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs and is not a zombie (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust the signal probe
    # The state follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that still run (zombies excluded); [] without procfs.

    Needed because a zombie still counts for ``killpg(pgid, 0)``: on hosts whose
    PID 1 does not reap orphans (some containers) dead processes linger as zombies.
    """
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # exited while we looked
        # After the command name: state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Poll until ``pid`` no longer runs; works for processes that are not our children."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group, ignoring a group that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_group(proc: "subprocess.Popen[bytes]", timeout: float = 10.0) -> int | None:
    """SIGTERM the child's process group, SIGKILL it after ``timeout``; returns the exit code.

    The child must have been started with ``start_new_session=True`` (its pid is
    its group id). A child that already exited is handled: its group may still
    hold grandchildren, which are killed too.
    """
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Leftover grandchildren in the group (if the child died first) go as well.
    signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _load_prctl() -> Callable[[int, int, int, int, int], int] | None:
    """libc's ``prctl`` (looked up once, in the parent: a forked child must not dlopen)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()

PDEATHSIG_SUPPORTED = _PRCTL is not None
"""Whether children can be tied to this process (Linux); elsewhere a SIGKILLed
supervisor leaves its children running, as before."""


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM this child when ``parent`` dies.

    It runs in the forked child before ``exec`` and does as little as it can
    there: one ``prctl`` call (resolved in the parent) and one ``getppid``. If
    the parent died between ``fork`` and ``prctl``, the signal will never come,
    so the child gives up at once instead of starting as an orphan.
    """
    prctl = _PRCTL
    assert prctl is not None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class _Spawner:
    """The one thread that forks every tied child.

    Linux sends the death signal when the *thread* that forked the child
    exits, not when the process does: a broker started from a short-lived
    thread (``asyncio.to_thread``, a thread pool shut down early) would be
    SIGTERMed as soon as that thread ended. So every tied child is forked by
    this daemon thread, which lives as long as the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], concurrent.futures.Future[Any]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Call ``start`` on the spawner thread and return (or raise) what it did."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="devstack-spawner", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._requests.put((start, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # re-raised in the caller's thread
                future.set_exception(exc)


_SPAWNER = _Spawner()


def spawn_tied(
    command: Sequence[str],
    *,
    output: IO[bytes],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own that dies with this process.

    stdin is ``/dev/null``; stdout and stderr go to ``output``. On Linux the
    child gets SIGTERM (:data:`DEATH_SIGNAL`) whenever this process dies, even
    by SIGKILL, so a supervisor that is killed leaves no service or broker
    behind. The child is forked by a dedicated long-lived thread (see
    :class:`_Spawner`), so callers may be on any thread. Elsewhere it is a
    plain ``Popen`` and outlives a killed parent.
    """

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if PDEATHSIG_SUPPORTED else None,
        )

    if not PDEATHSIG_SUPPORTED:
        return start()
    return _SPAWNER.run(start)


def run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    It runs on a private event loop in a short-lived thread, so the blocking
    start/stop helpers can be called from plain code, from pytest fixtures
    (whose session loop must not be replaced) and from ``asyncio.to_thread``.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="devstack-coroutine", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
