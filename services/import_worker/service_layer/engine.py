"""The batch engine: one batch of discovered accounts in, commands out.

Order of effects, fixed so a crash anywhere loses nothing:

1. decode every record (bad ones are dead-lettered);
2. one directory lookup for every customer in the batch;
3. in one ledger transaction: claim the accounts about to be imported (one
   statement; accounts already in the ledger are rediscoveries), produce every
   command, decision, retry and dead letter and wait for the broker's acks,
   then commit the ledger;
4. the caller commits the input offsets.

A failure before the ledger commit rolls it back; the batch is redone and
commands are re-sent with the same ids. The ledger never holds an account
whose commands were not acknowledged.
"""

import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.commands import Command
from schemas.decision import DECISION_RECORDED, DecisionRecorded
from schemas.discovery import account_key
from schemas.envelope import CONTENT_TYPE, utc_now
from schemas.ids import decision_id
from schemas.topics import TopicNames
from services.decision import Decision, decide
from services.import_worker.domain.inbound import (
    DiscoveredEvent,
    InRecord,
    Reason,
    Rejected,
    parse,
)
from services.import_worker.service_layer.ports import (
    CustomerDirectory,
    CustomerRecord,
    Ledger,
    LedgerRow,
    OutMessage,
    Publisher,
)
from services.infra.rejections import DETAIL_HEADER_BYTES, utf8_cut

_CT_HEADER = ("content-type", CONTENT_TYPE.encode())


@dataclass
class BatchResult:
    """What one batch did, for metrics and tests."""

    decided: dict[str, int] = field(default_factory=dict)  # outcome -> count
    rediscovered: int = 0
    commands: dict[str, int] = field(default_factory=dict)  # command type -> count
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason -> count
    retried: int = 0

    def _add(self, counter: dict[str, int], key: str, n: int = 1) -> None:
        counter[key] = counter.get(key, 0) + n

    def merge(self, other: "BatchResult") -> None:
        """Add ``other``'s counts to these (a batch processed in parts)."""
        for mine, theirs in (
            (self.decided, other.decided),
            (self.commands, other.commands),
            (self.dead_letters, other.dead_letters),
        ):
            for key, n in theirs.items():
                self._add(mine, key, n)
        self.rediscovered += other.rediscovered
        self.retried += other.retried


@dataclass(frozen=True)
class EngineConfig:
    topics: TopicNames
    retry_topic: str
    retry_delays: tuple[float, ...]
    source: str = "/import-worker"
    imported_cache_size: int = 500_000


class BatchEngine:
    """Decides a batch and makes its effects durable, in the order above."""

    def __init__(
        self,
        config: EngineConfig,
        directory: CustomerDirectory,
        ledger: Ledger,
        publisher: Publisher,
    ) -> None:
        self.config = config
        self.directory = directory
        self.ledger = ledger
        self.publisher = publisher
        self.imported = ImportedKeys(config.imported_cache_size)

    async def process(self, records: Sequence[InRecord]) -> BatchResult:
        result = BatchResult()
        out: list[OutMessage] = []
        parsed: list[tuple[InRecord, DiscoveredEvent]] = []
        for record in records:
            event = parse(record.value, record.headers)
            if isinstance(event, Rejected):
                out.append(self._dead_letter(record, event, result))
            else:
                parsed.append((record, event))

        customers = await self.directory.lookup(
            list({event.data.customer_id for _, event in parsed})
        )
        # Each candidate and unassigned account keeps its position in the batch, so
        # decisions leave in the order their discoveries were read (per customer too).
        candidates: dict[str, tuple[int, DiscoveredEvent, CustomerRecord, LedgerRow]] = {}
        unassigned: list[tuple[int, str, DiscoveredEvent, CustomerRecord]] = []
        repeats = 0
        for at, (record, event) in enumerate(parsed):
            customer = customers.get(event.data.customer_id)
            if customer is None:
                out.append(self._retry_or_give_up(record, result, "customer still unknown"))
                continue
            if customer.view.partner_id != event.partnerid:
                detail = (
                    f"customer {event.data.customer_id} belongs to another partner than "
                    f"{event.partnerid!r}"
                )
                out.append(
                    self._dead_letter(record, Rejected(Reason.PARTNER_MISMATCH, detail), result)
                )
                continue
            if event.data.account_type in customer.pending:
                why = f"the {event.data.account_type.value} policy of the customer still unknown"
                out.append(self._retry_or_give_up(record, result, why))
                continue
            policy = customer.policies.get(event.data.account_type)
            key = account_key(customer.view.partner_id, event.data)
            if key in self.imported:
                repeats += 1  # imported before: the ledger says so, no need to ask it
            elif policy is None:
                unassigned.append((at, key, event, customer))
            elif key in candidates:
                repeats += 1  # the same account twice in one batch: the first decides
            else:
                candidates[key] = (
                    at,
                    event,
                    customer,
                    LedgerRow(
                        account_key=key,
                        partner_id=customer.view.partner_id,
                        customer_id=customer.view.id,
                        policy_id=policy.id,
                        policy_version=policy.version,
                        decision_id=decision_id(key, event.id),
                    ),
                )

        if not candidates and not unassigned:
            # Nothing to claim or look up: dead letters and retries only (or nothing).
            result.rediscovered = repeats
            if out:
                await self.publisher.publish(out)
            return result

        async with self.ledger.transaction() as tx:
            fresh = (
                await tx.claim([row for *_, row in candidates.values()]) if candidates else set()
            )
            decided: list[tuple[int, list[OutMessage]]] = []
            for key, (at, event, customer, row) in candidates.items():
                if key in fresh:
                    policy = customer.policies[event.data.account_type]
                    decision = decide(event.data, customer.view, policy)
                    decided.append((at, self._emit(event, decision, row.decision_id, result)))
            result.rediscovered = repeats + len(candidates) - len(fresh)
            # No policy now: decided afresh each time, unless imported before (then
            # the first decision stands and this is only a rediscovery).
            imported = await tx.imported([k for _, k, _, _ in unassigned]) if unassigned else set()
            for at, key, event, customer in unassigned:
                if key in imported:
                    result.rediscovered += 1
                else:
                    decision = decide(event.data, customer.view, None)
                    recorded = decision_id(key, event.id)
                    decided.append((at, self._emit(event, decision, recorded, result)))
            decided.sort(key=lambda d: d[0])
            for _, messages in decided:
                out.extend(messages)
            if out:
                await self.publisher.publish(out)
            await tx.commit()
        self.imported.add_all(candidates)  # all in the ledger now: just claimed, or before
        self.imported.add_all(imported)
        return result

    async def reject(
        self, record: InRecord, error: BaseException, *, with_value: bool = True
    ) -> BatchResult:
        """Dead-letter one record that fails on its own (see ``service_layer/isolation``).

        The record was readable and valid; the worker failed on it for a reason
        of its own (a bug), so the reason is ``processing_failed`` and the
        detail names the error.
        """
        result = BatchResult()
        detail = f"processing failed: {type(error).__name__}: {error}"
        if not with_value:
            detail = f"value dropped: the dead letter could not be sent with it; {detail}"
            record = dataclasses.replace(record, value=None)
        why = Rejected(Reason.PROCESSING_FAILED, detail)
        await self.publisher.publish([self._dead_letter(record, why, result)])
        return result

    # -- building messages -----------------------------------------------------

    def _emit(
        self,
        event: DiscoveredEvent,
        decision: Decision,
        recorded: uuid.UUID,
        result: BatchResult,
    ) -> list[OutMessage]:
        """The decision's commands and its ``import.decision.recorded`` (id ``recorded``)."""
        key = decision.account.key
        key_bytes = key.encode()
        head = self._head(event, key)
        ids = decision.command_ids()
        account = decision.account.model_dump_json().encode()
        messages = []
        for cmd, cid in zip(decision.commands, ids, strict=True):
            messages.append(
                OutMessage(
                    self.config.topics.channel(cmd.CHANNEL),
                    key_bytes,
                    _envelope(head, str(cid), cmd.TYPE, dump_with_account(cmd, account)),
                    [_CT_HEADER],
                )
            )
            result._add(result.commands, cmd.TYPE)
        record = decision.record(ids)
        messages.append(
            OutMessage(
                self.config.topics.import_decisions,
                key_bytes,
                _envelope(
                    head, str(recorded), DECISION_RECORDED, dump_with_account(record, account)
                ),
                [_CT_HEADER],
            )
        )
        result._add(result.decided, decision.outcome.value)
        return messages

    def _head(self, cause: DiscoveredEvent, subject: str) -> bytes:
        """The envelope attributes shared by everything one discovery causes, as JSON."""
        shared = {
            "source": self.config.source,
            "time": utc_now().isoformat(),
            "subject": subject,
            "datacontenttype": "application/json",
            "partnerid": cause.partnerid,
            "causationid": cause.id,
            "correlationid": _correlation(cause),
        }
        return json.dumps(shared, separators=(",", ":"))[1:-1].encode()

    def _dead_letter(self, record: InRecord, why: Rejected, result: BatchResult) -> OutMessage:
        origin = record.first_seen
        result._add(result.dead_letters, why.reason.value)
        return OutMessage(
            self.config.topics.account_discovered_dlq,
            record.key,
            record.value,
            [
                ("x-error-reason", why.reason.value.encode()),
                ("x-error-detail", utf8_cut(why.detail, DETAIL_HEADER_BYTES)),
                ("x-original-topic", origin.topic.encode()),
                ("x-original-partition", str(origin.partition).encode()),
                ("x-original-offset", str(origin.offset).encode()),
                *_passed_on(record.headers),
            ],
        )

    def _retry_or_give_up(self, record: InRecord, result: BatchResult, why: str) -> OutMessage:
        delays = self.config.retry_delays
        if record.attempt >= len(delays):
            detail = f"{why} after {record.attempt} retries"
            return self._dead_letter(record, Rejected(Reason.UNKNOWN_CUSTOMER, detail), result)
        origin = record.first_seen
        due_ms = int((time.time() + delays[record.attempt]) * 1000)
        result.retried += 1
        return OutMessage(
            self.config.retry_topic,
            record.key,
            record.value,
            [
                ("x-attempt", str(record.attempt + 1).encode()),
                ("x-not-before", str(due_ms).encode()),
                ("x-original-topic", origin.topic.encode()),
                ("x-original-partition", str(origin.partition).encode()),
                ("x-original-offset", str(origin.offset).encode()),
                *_passed_on(record.headers),
            ],
        )


# Headers this worker sets on retries and dead letters; any other header of the
# record (a binary-mode event's ce_* attributes, content-type) travels with it.
_OWN_HEADERS = frozenset(
    {
        "x-attempt",
        "x-not-before",
        "x-error-reason",
        "x-error-detail",
        "x-original-topic",
        "x-original-partition",
        "x-original-offset",
    }
)


def _passed_on(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers if k not in _OWN_HEADERS]


class ImportedKeys:
    """Account keys known to be in the ledger, at most ``size`` of them (oldest go first).

    The ledger only grows, so a key seen there stays there: a hit is a
    rediscovery without a database round trip (most of the traffic), a miss
    asks the ledger. Keys are added only after the ledger commit.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: dict[str, None] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add_all(self, keys: Iterable[str]) -> None:
        if self.size <= 0:
            return
        for key in keys:
            self._keys[key] = None
        excess = len(self._keys) - self.size
        if excess > 0:
            for key in list(itertools.islice(self._keys, excess)):
                del self._keys[key]


_ACCOUNT_FIELD: set[str] = {"account"}  # a set: pydantic reads a frozenset 4x slower


def dump_with_account(model: Command | DecisionRecorded, account: bytes) -> bytes:
    """``model.model_dump_json()``, with its ``account`` already serialised as ``account``.

    Every command of a decision and its record carry the same account; it is
    the largest part of each and was serialised once per message. ``account``
    is the first field of both models, so the bytes are the same as pydantic's
    (a unit test compares them over generated decisions).
    """
    rest = model.model_dump_json(exclude=_ACCOUNT_FIELD).encode()
    if rest == b"{}":
        return b'{"account":' + account + b"}"
    return b'{"account":' + account + b"," + rest[1:]


def _envelope(shared: bytes, event_id: str, event_type: str, data: bytes) -> bytes:
    """A CloudEvents structured-mode envelope around already-serialised ``data``.

    Built by hand: the engine emits several per new account, and a pydantic
    round trip per envelope costs more than the decision itself. ``event_id``
    (a UUID) and ``event_type`` (a contract constant) need no JSON escaping;
    the output is checked against the generated JSON Schemas by unit tests.
    """
    return b"".join(
        (
            b'{"specversion":"1.0","id":"',
            event_id.encode(),
            b'","type":"',
            event_type.encode(),
            b'",',
            shared,
            b',"data":',
            data,
            b"}",
        )
    )


def _correlation(event: DiscoveredEvent) -> str:
    """The agent's ``correlationid`` if it is a valid one, else the event's own id."""
    extra = event.model_extra or {}
    value = extra.get("correlationid")
    return value if isinstance(value, str) and 0 < len(value) <= 128 else event.id


__all__ = ["BatchEngine", "BatchResult", "EngineConfig", "dump_with_account"]
