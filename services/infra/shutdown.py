"""Bounded shutdown: a hard deadline for the process, and Kafka clients that close in time.

A graceful stop waits on the broker in places we do not control: Faust's
final offset commit and aiokafka's ``commit()`` retry until the group
coordinator answers, ``producer.stop()`` flushes until every pending batch's
``request_timeout_ms`` has run out, and aiokafka 0.14's ``consumer.stop()``
raises a stray ``CancelledError`` when its fetch task was backing off after a
failed fetch (aio-libs/aiokafka#647), which in Faust's consumer thread leaves
mode waiting 60 s for a shutdown event that is never set. With the broker down
those waits end only when it is back.

Cutting them short loses nothing: offsets are committed only for finished
work and outbox rows are marked only after the broker's ack, so whatever was
not finished is redone by the next owner, with the same ids.
"""

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

EXIT_DEADLINE = 1
"""Exit status of a process that the deadline ended (a normal stop exits 0)."""

_lock = threading.Lock()
_timer: threading.Timer | None = None


def arm_exit_deadline(seconds: float, *, exit_code: int = EXIT_DEADLINE) -> None:
    """Give the process ``seconds`` to finish stopping; then end it where it stands.

    Call it when the stop begins (on SIGTERM). Only the first call counts: a
    second signal does not extend the deadline. A thread, not a task, so that
    it fires even if the event loop is stuck. Nothing is committed past it.
    """
    global _timer
    with _lock:
        if _timer is not None:
            return

        def expire() -> None:
            log.error(
                "shutdown not finished after %.1fs (a dependency is away); exiting now,"
                " committing nothing more",
                seconds,
            )
            for handler in logging.getLogger().handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os._exit(exit_code)

        _timer = threading.Timer(seconds, expire)
        _timer.name = "shutdown-deadline"
        _timer.daemon = True
        _timer.start()


async def _settle(what: str, step: Callable[[], Awaitable[Any]], timeout: float) -> bool:
    """``await step()`` in a task of its own, for at most ``timeout``; whether it ended well.

    A task of its own so that a ``CancelledError`` it raises by itself
    (aiokafka#647) is not mistaken for the cancellation of the caller.
    """
    task = asyncio.ensure_future(step())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        log.warning("%s did not stop within %.1fs; closing its connections", what, timeout)
        return False
    if task.cancelled() or task.exception() is not None:
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        log.info("%s.stop() failed (%s); closing its connections", what, reason)
        return False
    return True


async def _bounded(
    what: str, stop: Callable[[], Awaitable[Any]], parts: list[Any], timeout: float
) -> None:
    """``await stop()`` for at most ``timeout``; never raise. If it failed, close each of
    ``parts`` (its background tasks and its connections) one by one, a second each, so
    that nothing of the client is left running."""
    if await _settle(what, stop, timeout):
        return
    for part in parts:
        if part is not None:
            await _settle(f"{what} ({type(part).__name__})", part.close, 1.0)


async def stop_consumer(consumer: Any, timeout: float) -> None:
    """``AIOKafkaConsumer.stop()`` (leave the group), bounded; it never raises."""
    parts = [getattr(consumer, "_coordinator", None), getattr(consumer, "_fetcher", None)]
    await _bounded("the consumer", consumer.stop, [*parts, consumer._client], timeout)


async def stop_producer(producer: Any, timeout: float) -> None:
    """``AIOKafkaProducer.stop()`` (flush, then close), bounded; it never raises.

    Past ``timeout`` the unsent batches are given up: their futures never
    resolve, so whoever waited on them has not marked or committed anything.
    """
    await _bounded("the producer", producer.stop, [producer.client], timeout)


__all__ = ["EXIT_DEADLINE", "arm_exit_deadline", "stop_consumer", "stop_producer"]
