"""One retry policy for every "wait until the dependency is back" loop.

The outbox relay, the worker's start-up, its projection and its hot path all
retry work that failed because PostgreSQL or the broker is away. They share
this helper so that they behave alike: exponential back-off with jitter
(as tenacity's ``wait_exponential_jitter``, so a fleet of replicas that lost
the same database does not come back in lock step), capped, and interrupted at
once by a shutdown: a process asked to stop while waiting for a dead broker
stops, it does not finish its back-off first.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_base

T = TypeVar("T")

log = logging.getLogger(__name__)


class ShutdownRequested(Exception):
    """The process is stopping: the work being retried is given up, not failed."""


class StopSignal:
    """Whether the owner is stopping, and a sleep that returns as soon as it is.

    Built from a predicate (``lambda: service.should_stop``) and, optionally,
    an event set on stop; without the event a sleep checks the predicate every
    ``poll`` seconds.
    """

    def __init__(
        self,
        stopping: Callable[[], bool] | None = None,
        event: asyncio.Event | None = None,
        poll: float = 0.05,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._predicate = stopping or (lambda: False)
        self._event = event
        self._poll = poll
        self._sleep = sleep  # e.g. a mode service's own, which its stop interrupts

    @property
    def stopping(self) -> bool:
        return self._predicate() or (self._event is not None and self._event.is_set())

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; raise :class:`ShutdownRequested` if stopping before or during."""
        left = seconds
        while not self.stopping:
            if left <= 0:
                return
            if self._event is not None:
                try:
                    await asyncio.wait_for(self._event.wait(), timeout=left)
                except TimeoutError:
                    return
                continue
            step = min(left, self._poll)
            await self._sleep(step)
            left -= step  # what was asked for, not the clock: a test's instant sleep is instant
        raise ShutdownRequested


class ExponentialJitter(wait_base):
    """``initial * 2**(n-1)`` plus up to ``initial`` of jitter, capped at ``maximum``.

    tenacity's ``wait_exponential_jitter`` with a random generator of its own: the
    global one belongs to the program (and to Hypothesis, whose strategies must not
    see it move under them from a background retry).
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._random = random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        exponent = min(retry_state.attempt_number - 1, 64)
        wait = self.initial * 2**exponent + self._random.uniform(0, self.initial)
        return float(min(wait, self.maximum))


def _always(_: BaseException) -> bool:
    return True


async def retry_until_done(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: StopSignal,
    retry_on: Callable[[BaseException], bool] = _always,
    initial: float = 0.2,
    maximum: float = 10.0,
    on_failure: Callable[[BaseException], None] | None = None,
    logger: logging.Logger = log,
) -> T:
    """``await action()`` until it succeeds; back off between failures ``retry_on`` accepts.

    A failure ``retry_on`` rejects is raised at once; a shutdown while waiting
    raises :class:`ShutdownRequested`. ``on_failure`` sees every failure that
    will be retried (for metrics and health flags).
    """

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if exc is None:
            return
        if on_failure is not None:
            on_failure(exc)
        wait = state.upcoming_sleep
        logger.warning(
            "could not %s (%s); retrying in %.1fs", what, type(exc).__name__, wait, exc_info=exc
        )

    if stop.stopping:
        raise ShutdownRequested
    retrying = AsyncRetrying(
        sleep=stop.sleep,
        wait=ExponentialJitter(initial, maximum),
        # Never a cancellation or an interrupt: only errors of the work itself.
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and retry_on(exc)),
        before_sleep=before_sleep,
        reraise=True,
    )

    async def attempt() -> T:  # tenacity awaits only what it sees is a coroutine function
        return await action()

    return await retrying(attempt)


__all__ = ["ShutdownRequested", "StopSignal", "retry_until_done"]
