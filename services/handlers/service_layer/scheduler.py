"""Concurrency inside a partition, in order per key, committing only what is finished.

The pattern of Confluent's parallel consumer (KEY ordering): records of one
partition run concurrently, except that records of the same lane (topic and
key: one account's commands of one kind) run one after the other, in offset
order. A partition's committable offset is the lowest offset not yet finished
(the "highest committable offset" below which everything is done), so a commit
never covers a record still running, and a crash redoes only records at or
after it. One partner's slow or throttled integration therefore delays only its
own lanes: every other partner's records overtake it.

Memory is bounded: at most ``capacity`` records are held (running or queued in
their lane); the consumer pauses fetching while :attr:`full`.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Work:
    tp: TopicPartition
    offset: int
    lane: tuple[str, str]
    payload: Any = field(compare=False)


class PartitionProgress:
    """Offsets of one partition handed out, and which of them are finished."""

    def __init__(self) -> None:
        self._open: dict[int, bool] = {}  # offset -> finished, in the order handed out
        self._next: int | None = None  # first offset after everything handed out

    def add(self, offset: int) -> None:
        self._open[offset] = False
        self._next = max(self._next or 0, offset + 1)

    def finish(self, offset: int) -> None:
        if offset in self._open:
            self._open[offset] = True

    def committable(self) -> int | None:
        """The offset to commit: the first unfinished one, or the end when all are done."""
        for offset in list(self._open):
            if not self._open[offset]:
                return offset
            del self._open[offset]
        return self._next

    @property
    def open(self) -> int:
        return sum(1 for done in self._open.values() if not done)


class Scheduler:
    """Runs :class:`Work` with ``run``, per lane in order, at most ``capacity`` held."""

    def __init__(self, run: Callable[[Work], Coroutine[Any, Any, None]], capacity: int) -> None:
        self._run = run
        self.capacity = capacity
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._lanes: dict[tuple[str, str], deque[Work]] = {}
        self._tasks: dict[asyncio.Task[None], Work] = {}
        self._held = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._committed: dict[TopicPartition, int] = {}

    @property
    def held(self) -> int:
        return self._held

    @property
    def full(self) -> bool:
        return self._held >= self.capacity

    def submit(self, work: Work) -> None:
        self._progress.setdefault(work.tp, PartitionProgress()).add(work.offset)
        self._held += 1
        self._update_events()
        queue = self._lanes.get(work.lane)
        if queue is not None:
            queue.append(work)  # its lane is busy: it runs after the ones before it
            return
        self._lanes[work.lane] = deque()
        self._start(work)

    def _start(self, work: Work) -> None:
        task = asyncio.create_task(self._run(work), name=f"work {work.tp} @{work.offset}")
        self._tasks[task] = work
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        work = self._tasks.pop(task, None)
        if work is None:
            return
        if task.cancelled():
            return  # revoked: its partition is someone else's now
        if task.exception() is not None:
            # run() must end every record; one that raised is left unfinished (its
            # offset is never committed past) and its lane stays blocked: say so.
            log.error("work on %s @%d failed", work.tp, work.offset, exc_info=task.exception())
            return
        progress = self._progress.get(work.tp)
        if progress is not None:
            progress.finish(work.offset)
        self._held -= 1
        queue = self._lanes.get(work.lane)
        if queue:
            self._start(queue.popleft())
        else:
            self._lanes.pop(work.lane, None)
        self._update_events()

    def _update_events(self) -> None:
        if self.full:
            self._room.clear()
        else:
            self._room.set()
        if self._held == 0:
            self._idle.set()
        else:
            self._idle.clear()

    async def wait_for_room(self) -> None:
        await self._room.wait()

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit that moved since the last call."""
        out: dict[TopicPartition, int] = {}
        for tp, progress in self._progress.items():
            offset = progress.committable()
            if offset is not None and self._committed.get(tp) != offset:
                out[tp] = offset
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget these partitions: their queued work is dropped, their running work
        cancelled (unfinished: the new owner redoes it; the inbox makes that safe).

        A lane is one key of one topic, so all its work is of one partition."""
        gone = set(partitions)
        cancelled = {t: w for t, w in self._tasks.items() if w.tp in gone}
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        for task in cancelled:
            self._tasks.pop(task, None)
        lanes = {w.lane for w in cancelled.values()}
        dropped = 0
        for lane, queue in list(self._lanes.items()):
            if lane in lanes or any(w.tp in gone for w in queue):
                dropped += len(queue)
                del self._lanes[lane]
        self._held -= dropped + len(cancelled)
        for tp in gone:
            self._progress.pop(tp, None)
            self._committed.pop(tp, None)
        self._update_events()

    async def drain(self, timeout: float) -> bool:
        """Wait for everything held to finish, up to ``timeout``; whether it did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def cancel_all(self) -> None:
        await self.revoke(list(self._progress))
