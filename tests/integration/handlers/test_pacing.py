"""Vendor limits shared through PostgreSQL (``adapters/pacing.py``): two pacers of one
integration (as two handler processes would hold) never let a rolling window of the
limit's length hold more requests than the limit, and still use most of it."""

import asyncio
import time
import uuid

import asyncpg

from services.handlers.adapters.pacing import ConcurrencySlots, PgPacer

LIMIT, WINDOW = 20, 1.0


def _most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_two_processes_share_one_window(handlers_db: asyncpg.Pool) -> None:
    key = f"p-{uuid.uuid4().hex[:8]}:halo"
    pacers = [PgPacer(handlers_db, key, LIMIT, WINDOW, margin=0.1) for _ in range(2)]
    sent: list[float] = []

    async def request(pacer: PgPacer) -> None:
        await pacer.acquire()
        sent.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(request(pacers[i % 2]) for i in range(5 * LIMIT)))
    took = time.monotonic() - started
    slots = await handlers_db.fetch(
        "SELECT extract(epoch FROM at) AS at FROM handlers.pacing_slots WHERE integration = $1",
        key,
    )
    assert len(slots) >= 2 * LIMIT  # the last two windows' slots (older ones are pruned)
    # The slots the pacer stamped: no window even 0.1 s longer than the vendor's holds more
    # than the limit; that margin absorbs the jitter between a stamp and the request leaving.
    assert _most_in_a_window([float(r["at"]) for r in slots], WINDOW + 0.1) <= LIMIT
    assert _most_in_a_window(sent, WINDOW - 0.02) <= LIMIT
    # 100 requests at 20 per second: the first 20 at once, then 20 each window.
    assert took < 4 * WINDOW * 1.25, took
    rate = (len(sent) - LIMIT) / (max(sent) - min(sent))
    assert rate >= 0.85 * LIMIT / WINDOW, rate  # a 1 s window loses 10 % to the margin


async def test_a_429_pauses_every_process(handlers_db: asyncpg.Pool) -> None:
    key = f"p-{uuid.uuid4().hex[:8]}:hudu"
    one, other = (PgPacer(handlers_db, key, 1000, 60.0) for _ in range(2))
    await one.pause(0.6)
    started = time.monotonic()
    await other.acquire()
    assert time.monotonic() - started >= 0.5


async def test_concurrency_slots_are_shared(handlers_db: asyncpg.Pool) -> None:
    key = f"p-{uuid.uuid4().hex[:8]}:autotask"
    slots = [ConcurrencySlots(handlers_db, key, 3) for _ in range(2)]
    inside = most = 0

    async def request(i: int) -> None:
        nonlocal inside, most
        async with slots[i % 2].hold():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(request(i) for i in range(12)))
    assert most == 3
