"""The handlers' scheduler (``service_layer/scheduler.py``): concurrent across keys, in
order per key, committing only below the first unfinished offset, bounded in memory."""

import asyncio

import pytest
from aiokafka import TopicPartition

from services.handlers.service_layer.scheduler import PartitionProgress, Scheduler, Work

pytestmark = pytest.mark.unit

P0 = TopicPartition("commands.psa", 0)
P1 = TopicPartition("commands.psa", 1)


def test_progress_commits_below_the_first_unfinished_offset() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12, 13):
        progress.add(offset)
    assert progress.committable() == 10
    progress.finish(11)
    progress.finish(13)
    assert progress.committable() == 10  # 10 still running: nothing past it
    progress.finish(10)
    assert progress.committable() == 12
    progress.finish(12)
    assert progress.committable() == 14  # all done: the end


class Gates:
    """Work that finishes when the test says so, recording the order it started in."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.release: dict[int, asyncio.Event] = {}

    async def run(self, work: Work) -> None:
        self.started.append(work.offset)
        await self.release.setdefault(work.offset, asyncio.Event()).wait()

    def done(self, offset: int) -> None:
        self.release.setdefault(offset, asyncio.Event()).set()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_slow_key_does_not_hold_back_the_others_and_keeps_its_order() -> None:
    gates = Gates()
    scheduler = Scheduler(gates.run, capacity=100)
    # key "a" (throttled partner): offsets 0, 2, 4; key "b": 1, 3
    for offset, key in ((0, "a"), (1, "b"), (2, "a"), (3, "b"), (4, "a")):
        scheduler.submit(Work(P0, offset, ("commands.psa", key), None))
    await _settle()
    assert gates.started == [0, 1]  # one per key at a time
    gates.done(1)
    await _settle()
    assert gates.started == [0, 1, 3]  # b goes on while a's first is still running
    gates.done(3)
    await _settle()
    assert scheduler.committable() == {P0: 0}  # nothing committed past a's running 0
    gates.done(0)
    await _settle()
    assert gates.started == [0, 1, 3, 2]
    assert scheduler.committable() == {P0: 2}
    gates.done(2)
    await _settle()
    gates.done(4)
    await _settle()
    assert gates.started == [0, 1, 3, 2, 4]
    assert scheduler.committable() == {P0: 5}
    assert scheduler.held == 0


async def test_capacity_bounds_what_is_held() -> None:
    gates = Gates()
    scheduler = Scheduler(gates.run, capacity=3)
    for offset in range(3):
        scheduler.submit(Work(P0, offset, ("t", str(offset)), None))
    assert scheduler.full
    waiting = asyncio.create_task(scheduler.wait_for_room())
    await _settle()
    assert not waiting.done()
    gates.done(1)
    await _settle()
    assert waiting.done()
    assert not scheduler.full


async def test_a_revoked_partition_is_cancelled_and_forgotten() -> None:
    gates = Gates()
    scheduler = Scheduler(gates.run, capacity=10)
    scheduler.submit(Work(P0, 0, ("t", "a"), None))
    scheduler.submit(Work(P0, 1, ("t", "a"), None))  # queued behind 0
    scheduler.submit(Work(P1, 0, ("t", "b"), None))
    await _settle()
    await scheduler.revoke([P0])
    assert scheduler.held == 1
    assert scheduler.committable() == {P1: 0}
    gates.done(0)  # P1's work (offset 0)
    await _settle()
    assert scheduler.committable() == {P1: 1}
    assert gates.started == [0, 0]  # P0's queued offset 1 never ran


async def test_committed_offsets_are_reported_once() -> None:
    gates = Gates()
    scheduler = Scheduler(gates.run, capacity=10)
    scheduler.submit(Work(P0, 7, ("t", "a"), None))
    gates.done(7)
    await _settle()
    offsets = scheduler.committable()
    assert offsets == {P0: 8}
    scheduler.committed(offsets)
    assert scheduler.committable() == {}
    assert await scheduler.drain(0.1)
