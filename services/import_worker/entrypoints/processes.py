"""``import-worker run --processes N``: N worker processes behind one command.

One Python process decides on one core; a host with more cores runs more
workers. Each child is a complete ``import-worker run`` and a member of the
same consumer groups, so the broker splits ``account.discovered``'s
partitions (and the projection's) between them, exactly as between replicas
on several hosts: nothing is shared in memory, every guarantee of one worker
holds for each. Child ``i`` serves ``/healthz``, ``/readyz`` and ``/metrics`` on
``WORKER_HTTP_PORT + i``.

The parent only supervises:

- SIGTERM / SIGINT are passed on to every child once (as SIGTERM), and the parent waits for
  them (each child bounds its own shutdown), then exits with the worst code;
- a child that is killed (a signal: the OOM killer, an operator), or that
  exits after it has been up ``settled_after`` seconds, is started again (its
  partitions move to the others meanwhile, then back); one that exits with an
  error sooner failed to start (bad settings, its port taken), which
  restarting will not fix, so everything is stopped and its exit code
  returned (an orchestrator then sees it, as with one process);
- if the parent itself is killed, the kernel sends each child SIGTERM
  (``PR_SET_PDEATHSIG``), so no worker is orphaned.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: SIGTERM this child when the parent dies (elsewhere: nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


# One worker process: the same interpreter and package as the parent.
_CHILD_COMMAND = [sys.executable, "-m", "services.import_worker.entrypoints.cli", "run"]


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    started: float  # time.monotonic()


class Supervisor:
    """Starts ``count`` children, restarts the ones that die, stops them all on a signal."""

    def __init__(
        self,
        count: int,
        *,
        base_port: int,
        settled_after: float = 10.0,
        restart_delay: float = 1.0,
        poll: float = 0.2,
    ) -> None:
        if count < 1:
            raise ValueError("at least one process")
        self.count = count
        self.base_port = base_port
        self.settled_after = settled_after
        self.restart_delay = restart_delay
        self.poll = poll
        self.children: dict[int, _Child] = {}
        self.stopping = False

    def _spawn(self, index: int) -> _Child:
        env = {
            **os.environ,
            "WORKER_PROCESSES": "1",
            "WORKER_HTTP_PORT": str(self.base_port + index),
        }
        # A process group of its own: a terminal's Ctrl-C reaches the parent only,
        # which passes one SIGTERM on (a second signal would cut a child's shutdown).
        proc = subprocess.Popen(
            _CHILD_COMMAND, env=env, process_group=0, preexec_fn=_die_with_parent
        )
        log.info("worker process started", extra={"index": index, "pid": proc.pid})
        return _Child(proc, time.monotonic())

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping the worker processes", extra={"signal": signum})
        self.stopping = True
        for child in self.children.values():
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Supervise until a signal (or a child failing at start); the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        failed: int | None = None
        try:
            for index in range(self.count):
                self.children[index] = self._spawn(index)
            while not self.stopping:
                time.sleep(self.poll)
                failed = self._reap()
                if failed is not None:
                    self._on_signal(signal.SIGTERM, None)
            codes = [child.proc.wait() for child in self.children.values()]
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if failed is not None:
            return failed
        return max((abs(c) for c in codes), default=0)

    def _reap(self) -> int | None:
        """Restart the children that died settled; the code of one that died starting."""
        for index, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None or self.stopping:
                continue
            uptime = time.monotonic() - child.started
            if code > 0 and uptime < self.settled_after:
                log.error(
                    "a worker process exited while starting; stopping all",
                    extra={"index": index, "pid": child.proc.pid, "exit_code": code},
                )
                return abs(code) or 1
            log.warning(
                "a worker process exited; starting it again",
                extra={"index": index, "pid": child.proc.pid, "exit_code": code},
            )
            time.sleep(self.restart_delay)
            if not self.stopping:
                self.children[index] = self._spawn(index)
        return None


__all__ = ["Supervisor"]
