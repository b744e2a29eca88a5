"""Isolating a poison record: the rest of its batch goes on, it goes to the DLQ.

A batch that fails because a dependency is away (PostgreSQL, the broker) is
retried whole, as often as it takes: an outage must never dead-letter
anything. A batch that fails for any other reason probably holds one record
the code cannot handle, and retrying it whole would stall its partitions for
ever. Such a batch is split in halves, recursively, until the failing record
stands alone; it gets a few more attempts (the error may have been a fluke),
then it is dead-lettered with the error in ``x-error-detail``. This is the
retry-then-recover model of Spring Kafka's ``DefaultErrorHandler`` with its
``DeadLetterPublishingRecoverer``, and of Kafka Streams' processing exception
handler (KIP-1033), applied to a batch.

The halves run in order, so decisions still leave in discovery order. A part
that succeeded is durable (ledger committed, commands acknowledged); if a
later part then meets an outage, the whole batch is redone and those records
are rediscoveries, with their commands re-sent under the same ids at most.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence

from services.import_worker.domain.inbound import InRecord
from services.import_worker.service_layer.engine import BatchEngine, BatchResult

log = logging.getLogger(__name__)

IsTransient = Callable[[BaseException], bool]


class Abandoned(Exception):
    """The caller gave the batch up (a rebalance, a stop) part way through."""


class PoisonIsolator:
    """Processes a batch that failed, finding and dead-lettering the records at fault."""

    def __init__(
        self,
        engine: BatchEngine,
        is_transient: IsTransient,
        *,
        attempts: int = 3,
        pause: float = 0.05,
        given_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.engine = engine
        self.is_transient = is_transient
        self.attempts = attempts
        self.pause = pause
        self.given_up = given_up

    async def process(self, records: Sequence[InRecord]) -> BatchResult:
        """Like ``engine.process``; raises only transient errors (or :class:`Abandoned`)."""
        result = BatchResult()
        await self._split(records, result)
        return result

    async def _split(self, part: Sequence[InRecord], result: BatchResult) -> None:
        if self.given_up():
            raise Abandoned
        try:
            result.merge(await self.engine.process(part))
            return
        except Exception as exc:
            if self.is_transient(exc):
                raise
            if len(part) == 1:
                await self._alone(part[0], exc, result)
                return
        middle = len(part) // 2
        await self._split(part[:middle], result)
        await self._split(part[middle:], result)

    async def _alone(self, record: InRecord, error: Exception, result: BatchResult) -> None:
        """One record that failed by itself: a few more tries, then the DLQ."""
        for _ in range(self.attempts - 1):
            await asyncio.sleep(self.pause)
            if self.given_up():
                raise Abandoned
            try:
                result.merge(await self.engine.process([record]))
                return
            except Exception as exc:
                if self.is_transient(exc):
                    raise
                error = exc
        log.error(
            "dead-lettering a record that fails on its own",
            exc_info=error,
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
        try:
            result.merge(await self.engine.reject(record, error))
        except Exception as exc:
            if self.is_transient(exc):
                raise
            # The dead letter itself was refused (e.g. too large once headers were
            # added): send it without the value rather than stall the partition.
            result.merge(await self.engine.reject(record, error, with_value=False))
