"""The accounts read model's rules (docs/contract.md §8), with no I/O.

What the projection keeps of ``import.decisions`` and ``command.results``,
which of two reports about the same thing wins (so that any order of arrival,
and any number of duplicates, ends in the same rows), and an account's
``status`` roll-up.
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.catalog import BY_TYPE
from schemas.commands import COMMAND_MODELS
from schemas.decision import DECISION_RECORDED, DecisionRecorded, Outcome
from schemas.ids import command_id
from schemas.results import (
    COMMAND_FAILED,
    COMMAND_SUCCEEDED,
    CommandFailed,
    CommandResult,
    FailureReason,
)


class AccountStatus(StrEnum):
    DONE = "done"
    PENDING = "pending"
    ATTENTION = "attention"
    NO_POLICY = "no_policy"


class CommandStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def roll_up(outcome: str, commands: Iterable[str]) -> AccountStatus:
    """``attention`` if any command failed, else ``pending`` if any has no result
    yet, else ``done``; ``no_policy`` for such decisions."""
    if outcome == Outcome.NO_POLICY:
        return AccountStatus.NO_POLICY
    seen = set(commands)
    if "failed" in seen:
        return AccountStatus.ATTENTION
    if "pending" in seen:
        return AccountStatus.PENDING
    return AccountStatus.DONE


def command_statuses(command_ids: Iterable[str], reported: Mapping[str, str]) -> list[str]:
    """The status of each command an account has and of each one reported for it:
    a command without a result is pending."""
    ids = list(command_ids)
    statuses = [reported.get(cid, CommandStatus.PENDING.value) for cid in ids]
    known = set(ids)
    return statuses + [s for cid, s in reported.items() if cid not in known]


@dataclass(frozen=True)
class DecisionRow:
    """One account's decision, as the read model keeps it."""

    key: str
    partner_id: str
    decision_id: uuid.UUID
    decided_at: datetime
    decision: DecisionRecorded

    def rank(self) -> tuple[bool, datetime, uuid.UUID]:
        """The later decision wins, and an import over any ``no_policy``: an account
        is imported once, and decided ``no_policy`` afresh until then."""
        return (self.decision.outcome == Outcome.IMPORTED, self.decided_at, self.decision_id)

    @property
    def search(self) -> str:
        account = self.decision.account
        parts = (account.username, account.display_name or "", account.email or "")
        return " ".join(parts).lower()


@dataclass(frozen=True)
class ResultRow:
    """A command's latest result."""

    partner_id: str
    result_id: uuid.UUID
    result: CommandResult

    @property
    def status(self) -> CommandStatus:
        failed = isinstance(self.result, CommandFailed)
        return CommandStatus.FAILED if failed else CommandStatus.SUCCEEDED

    def rank(self) -> tuple[datetime, uuid.UUID]:
        return (self.result.finished_at, self.result_id)


@dataclass(frozen=True)
class CommandView:
    """A command of an account as the API shows it: its latest result, or pending."""

    id: uuid.UUID
    type: str | None
    status: str
    outcome: str | None
    reason: str | None
    provider: str | None
    refs: list[dict[str, Any]]
    detail: str | None
    updated_at: datetime


def account_commands(
    key: str,
    command_ids: Iterable[str],
    decided_at: datetime,
    results: Iterable[CommandView],
) -> list[CommandView]:
    """The decision's commands in its order, each with its result or pending (since
    the decision), then any command reported for the account that the decision
    does not name."""
    reported = {r.id: r for r in results}
    types = command_types(key)
    shown = []
    for raw in command_ids:
        cid = uuid.UUID(raw)
        found = reported.pop(cid, None)
        shown.append(
            found
            or CommandView(
                cid,
                types.get(cid),
                CommandStatus.PENDING.value,
                None,
                None,
                None,
                [],
                None,
                decided_at,
            )
        )
    return shown + sorted(reported.values(), key=lambda r: str(r.id))


def command_types(key: str) -> dict[uuid.UUID, str]:
    return {command_id(key, model.TYPE): model.TYPE for model in COMMAND_MODELS}


def newest_decisions(rows: Iterable[DecisionRow]) -> dict[str, DecisionRow]:
    """The winning decision per account key among ``rows``."""
    best: dict[str, DecisionRow] = {}
    for row in rows:
        known = best.get(row.key)
        if known is None or known.rank() < row.rank():
            best[row.key] = row
    return best


def newest_results(rows: Iterable[ResultRow]) -> dict[uuid.UUID, ResultRow]:
    """The latest result per command id among ``rows``."""
    best: dict[uuid.UUID, ResultRow] = {}
    for row in rows:
        cid = row.result.command_id
        known = best.get(cid)
        if known is None or known.rank() < row.rank():
            best[cid] = row
    return best


# (partner, customer, account type, status) -> accounts
CountKey = tuple[str, uuid.UUID, str, str]


def count_changes(
    before: Mapping[str, CountKey], after: Mapping[str, CountKey]
) -> dict[CountKey, int]:
    """How each count moves when the accounts in ``before`` (by key) become those
    of ``after``; an account absent from ``before`` is new."""
    moves: Counter[CountKey] = Counter()
    for key, now in after.items():
        was = before.get(key)
        if was == now:
            continue
        if was is not None:
            moves[was] -= 1
        moves[now] += 1
    return {k: n for k, n in moves.items() if n}


def plain_refs(result: CommandResult) -> list[dict[str, Any]]:
    return [ref.model_dump(mode="json") for ref in result.refs]


# -- reading a batch of records -------------------------------------------------

# Reasons that say the integration itself does not work (not this one command).
_FAILING = {FailureReason.INTEGRATION_AUTH, FailureReason.TIMEOUT}
# Reasons that say nothing about the integration (it was not even called).
_SILENT = {FailureReason.INTEGRATION_MISSING}

# (partner, provider, state, detail, checked_at)
StatusReport = tuple[str, str, str, str | None, datetime]


@dataclass
class Batch:
    """What a batch of ``import.decisions`` and ``command.results`` records says,
    reduced: the winning decision per account, the newest result per command."""

    decisions: dict[str, DecisionRow] = field(default_factory=dict)
    results: dict[uuid.UUID, ResultRow] = field(default_factory=dict)
    unreadable: int = 0  # not an event of these topics, or not valid
    foreign: int = 0  # about an account of another partner than the event's

    def statuses(self) -> list[StatusReport]:
        """The newest integration status each partner's results say."""
        newest: dict[tuple[str, str], StatusReport] = {}
        for row in self.results.values():
            report = status_report(row)
            if report is None:
                continue
            known = newest.get(report[:2])
            if known is None or known[4] < report[4]:
                newest[report[:2]] = report
        return list(newest.values())


def status_report(row: ResultRow) -> StatusReport | None:
    """The integration's status this result says: ``failing`` with the vendor's
    message when the credentials were refused or the vendor could not be
    reached, ``ok`` on any other outcome (the integration answered)."""
    result = row.result
    if not result.provider:
        return None
    if isinstance(result, CommandFailed):
        if result.reason in _SILENT:
            return None
        state = "failing" if result.reason in _FAILING else "ok"
    else:
        state = "ok"
    detail = (result.detail or None) if state == "failing" else None
    return (row.partner_id, result.provider, state, detail, result.finished_at)


_READ = (DECISION_RECORDED, COMMAND_SUCCEEDED, COMMAND_FAILED)
_ENVELOPES = {kind: BY_TYPE[kind].envelope_model() for kind in _READ}


def read_batch(values: Iterable[bytes | None]) -> Batch:
    """Parse and reduce a batch; a record that cannot be read is counted, never raised."""
    decisions: list[DecisionRow] = []
    results: list[ResultRow] = []
    batch = Batch()
    for value in values:
        try:
            raw = json.loads(value or b"")  # once: the type says which model validates it
            kind = raw.get("type") if isinstance(raw, dict) else None
            if kind not in _READ:
                raise ValueError(kind)
            event = _ENVELOPES[kind].model_validate(raw)
        except (ValidationError, ValueError, RecursionError):
            batch.unreadable += 1
            continue
        data = event.data
        if isinstance(data, DecisionRecorded):
            if not data.account.key.startswith(event.partnerid + ":"):
                batch.foreign += 1
                continue
            decisions.append(
                DecisionRow(
                    data.account.key, event.partnerid, _event_uuid(event.id), event.time, data
                )
            )
        elif isinstance(data, CommandResult):
            if not data.account_key.startswith(event.partnerid + ":"):
                batch.foreign += 1
                continue
            results.append(ResultRow(event.partnerid, _event_uuid(event.id), data))
    batch.decisions = newest_decisions(decisions)
    batch.results = newest_results(results)
    return batch


def _event_uuid(event_id: str) -> uuid.UUID:
    """Our producers' ids are UUIDs; any other id still orders deterministically."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, event_id)
