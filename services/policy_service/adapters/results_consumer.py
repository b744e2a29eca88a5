"""``command.results`` into the policy service's tables: what the handlers reported.

Each result says which partner's integration executed the command and how it
went; the newest report per integration sets its ``status``
(docs/contract.md §6): ``failing`` with the vendor's message when the
credentials were refused or the vendor could not be reached, ``ok`` on any
other outcome (the integration answered). Batched: one read of up to
``batch_size`` records, one statement, then the offsets are committed; an
outage is waited out and nothing is skipped for it. A record that is not a
result is counted and passed over (the handlers are its producer; there is
nothing to retry).
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError

from schemas.catalog import BY_TYPE
from schemas.results import (
    COMMAND_FAILED,
    COMMAND_SUCCEEDED,
    CommandFailed,
    CommandResult,
    FailureReason,
)
from services.infra.retry import ShutdownRequested, StopSignal, retry_until_done
from services.infra.shutdown import stop_consumer
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.repository import Repository

log = logging.getLogger(__name__)

# Reasons that say the integration itself does not work (not this one command).
FAILING = {FailureReason.INTEGRATION_AUTH, FailureReason.TIMEOUT}
# Reasons that say nothing about the integration (it was not even called).
SILENT = {FailureReason.INTEGRATION_MISSING}

StatusReport = tuple[str, str, str, str | None, datetime]


@dataclass(frozen=True)
class ResultsConfig:
    bootstrap_servers: str
    topic: str
    group_id: str
    batch_size: int = 2000


class _Type(BaseModel):
    type: str


def status_reports(values: Iterable[bytes | None]) -> tuple[list[StatusReport], int]:
    """The newest status per integration said by these result records; and how many
    records were not readable results."""
    newest: dict[tuple[str, str], StatusReport] = {}
    unreadable = 0
    for value in values:
        try:
            kind = _Type.model_validate_json(value or b"").type
            if kind not in (COMMAND_SUCCEEDED, COMMAND_FAILED):
                raise ValueError(kind)
            event = BY_TYPE[kind].envelope_model().model_validate_json(value or b"")
        except (ValidationError, ValueError):
            unreadable += 1
            continue
        result = event.data
        if not isinstance(result, CommandResult) or not result.provider:
            continue
        provider = result.provider
        if isinstance(result, CommandFailed):
            if result.reason in SILENT:
                continue
            state = "failing" if result.reason in FAILING else "ok"
        else:
            state = "ok"
        detail, at = result.detail or None, result.finished_at
        report = (event.partnerid, provider, state, detail if state == "failing" else None, at)
        known = newest.get((event.partnerid, provider))
        if known is None or known[4] < at:
            newest[(event.partnerid, provider)] = report
    return list(newest.values()), unreadable


class ResultsConsumer:
    """Follows ``command.results`` until stopped."""

    def __init__(self, config: ResultsConfig, db: Database, registry: CollectorRegistry) -> None:
        self.config = config
        self.db = db
        self.records = Counter(
            "results_consumed",
            "command.results records read, by what came of them",
            ["result"],
            registry=registry,
        )
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        with contextlib.suppress(ShutdownRequested):
            await retry_until_done(
                self._session,
                what="consume command.results",
                stop=StopSignal(event=self._stopping),
                logger=log,
            )

    async def _session(self) -> None:
        consumer = AIOKafkaConsumer(
            self.config.topic,
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="policy-service-results",
        )
        try:
            await consumer.start()  # inside: a start that fails half way is stopped too
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.config.batch_size)
                records: list[ConsumerRecord] = [r for rs in batch.values() for r in rs]
                if not records:
                    continue
                await self.apply(r.value for r in records)
                await consumer.commit()
        finally:
            await stop_consumer(consumer, timeout=2.0)

    async def apply(self, values: Iterable[bytes | None]) -> None:
        reports, unreadable = status_reports(values)
        if unreadable:
            self.records.labels("unreadable").inc(unreadable)
            log.warning("%d command.results records were not readable results", unreadable)
        if reports:
            async with self.db.pool.acquire() as conn:
                changed = await Repository(conn).report_integration_status(reports)
            self.records.labels("status").inc(changed)
