"""Process helpers shared by the broker, PostgreSQL and the ``up`` command.

Every long-running child of the dev stack is started in a session of its own,
so a Ctrl-C in the terminal reaches only ``msp-import-dev`` and it can stop the
children in order (services, then broker, then PostgreSQL) instead of all of
them dying at once.  Signalling the whole process group also reaps anything a
child started itself.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


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
