"""One classification of outages (docs/contract.md §3) and one retry helper for every
"wait until the dependency is back" loop (``services/infra``)."""

import asyncio
import time

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from services.infra.failures import (
    OUTAGE_SQLSTATE_CLASSES,
    database_unavailable,
    is_outage,
    is_transient,
)
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done

pytestmark = pytest.mark.unit


def _by_sqlstate(sqlstate: str) -> asyncpg.PostgresError:
    cls = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)  # type: ignore[attr-defined]
    return cls(f"server said {sqlstate}")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "sqlstate",
    [
        "25006",  # read-only transaction: failover behind a pooler, disk full on a managed server
        "25P03",  # idle-in-transaction session timeout
        "25P02",  # in failed transaction
        "08006",  # connection failure
        "08001",  # cannot connect
        "53300",  # too many connections
        "53100",  # disk full
        "57P01",  # admin shutdown
        "57P03",  # cannot connect now (starting up, recovery)
        "57014",  # query cancelled (statement timeout)
        "57P05",  # idle session timeout
    ],
)
def test_sqlstate_classes_08_25_53_57_are_outages(sqlstate: str) -> None:
    exc = _by_sqlstate(sqlstate)
    assert sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES
    assert database_unavailable(exc)
    assert is_outage(exc)
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        TimeoutError(),
        EOFError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError("cannot switch to state 15"),
        KafkaConnectionError(),
    ],
)
def test_dropped_connections_are_outages(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _by_sqlstate("23505"),  # unique violation
        _by_sqlstate("22P02"),  # invalid text representation
        _by_sqlstate("42P01"),  # undefined table (a deploy without its migration: a bug)
        _by_sqlstate("XX000"),  # internal error
        MessageSizeTooLargeError(),
        KeyError("x"),
        ValueError("x"),
    ],
)
def test_errors_about_the_work_are_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc)
    assert not database_unavailable(exc)
    assert not is_transient(exc)


def test_a_serialization_failure_is_retried_but_is_no_outage() -> None:
    exc = _by_sqlstate("40001")
    assert is_transient(exc)
    assert not is_outage(exc)
    assert not database_unavailable(exc)  # the API answers 409/500 for it, not 503


# ------------------------------------------------------------------ retry helper


async def test_retries_until_the_action_succeeds_with_growing_jittered_waits() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 5:
            raise ConnectionResetError("away")
        return "done"

    failures: list[BaseException] = []
    result = await retry_until_done(
        flaky,
        what="test",
        stop=StopSignal(sleep=record, poll=1000),
        initial=0.1,
        maximum=0.5,
        on_failure=failures.append,
    )
    assert result == "done"
    assert calls == 5
    assert len(failures) == 4
    waits = slept  # one sleep call per wait (poll larger than any wait)
    assert len(waits) == 4
    assert 0.1 <= waits[0] <= 0.2
    assert all(w <= 0.5 for w in waits)
    assert waits[2] >= 0.4  # 0.1 * 2**2, capped at 0.5


async def test_an_error_retry_on_rejects_is_raised_at_once() -> None:
    calls = 0

    async def bug() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retry_until_done(bug, what="test", stop=StopSignal(), retry_on=is_outage)
    assert calls == 1


async def test_a_shutdown_interrupts_the_back_off_at_once() -> None:
    stopping = asyncio.Event()

    async def down() -> None:
        raise ConnectionRefusedError

    async def stop_soon() -> None:
        await asyncio.sleep(0.2)
        stopping.set()

    started = time.monotonic()
    task = asyncio.create_task(stop_soon())
    with pytest.raises(ShutdownRequested):
        await retry_until_done(
            down, what="test", stop=StopSignal(event=stopping), initial=30, maximum=60
        )
    await task
    assert time.monotonic() - started < 2


async def test_a_predicate_stop_is_seen_between_polls() -> None:
    flag = {"stop": False}

    async def down() -> None:
        flag["stop"] = True  # e.g. a rebalance took the partitions during the attempt
        raise ConnectionRefusedError

    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        await retry_until_done(
            down, what="test", stop=StopSignal(lambda: flag["stop"]), initial=30, maximum=60
        )
    assert time.monotonic() - started < 1


async def test_a_cancellation_is_never_retried() -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await retry_until_done(cancelled, what="test", stop=StopSignal())
    assert calls == 1


async def test_already_stopping_means_not_even_one_attempt() -> None:
    event = asyncio.Event()
    event.set()
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(ShutdownRequested):
        await retry_until_done(work, what="test", stop=StopSignal(event=event))
    assert calls == 0
