"""Checking what the import worker left behind against what it was sent.

From the discoveries sent and the world they were decided in, the audit knows every
decision and command that must exist (the first discovery of an imported account
decides it once; a ``no_policy`` account is decided at every discovery). It then
reads everything the workers produced, the ledger and the committed offsets, and
counts what is lost, unexpected, doubled or out of order.
"""

import json
from collections import defaultdict
from typing import Any

import asyncpg

from chaos.lab import WorkerRig, wait_until
from chaos.report import Result
from chaos.workload import Sent, World, end_offsets
from schemas.ids import decision_id
from tests.integration.import_worker.support import Out


async def wait_committed(rig: WorkerRig, sent: list[Sent], timeout: float = 300) -> None:
    """Until the group committed every input offset (raises with the workers' logs if not)."""
    end = end_offsets(sent)

    async def done() -> bool:
        got = await rig.committed()
        return all(got.get(p, 0) >= o for p, o in end.items())

    try:
        await wait_until(done, "every input offset committed", timeout=timeout, every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rig.log_tails()}") from None
    assert rig.reader is not None
    await rig.reader.drain()


def _without_time(record: Out) -> str:
    envelope = dict(record.envelope)
    envelope.pop("time", None)
    return json.dumps(envelope, sort_keys=True)


async def audit_worker(
    rig: WorkerRig,
    sent: list[Sent],
    world: World,
    db: asyncpg.Pool,
    result: Result,
    *,
    order: bool = False,
) -> None:
    """Add the figures and checks of "nothing lost, nothing doubled" to ``result``."""
    assert rig.reader is not None
    first: dict[str, Sent] = {}
    every: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        first.setdefault(s.key, s)
        every[s.key].append(s)
    expected_decisions: dict[str, tuple[str, list[str]]] = {}  # id -> (outcome, command ids)
    expected_commands: set[str] = set()
    imported: set[str] = set()
    for key, s in first.items():
        decision = world.decide(s.discovery.account)
        ids = [str(i) for i in decision.command_ids()]
        if decision.outcome.value == "imported":
            imported.add(key)
            expected_commands.update(ids)
            expected_decisions[str(decision_id(key, s.event_id))] = ("imported", ids)
        else:
            for again in every[key]:
                expected_decisions[str(decision_id(key, again.event_id))] = ("no_policy", [])

    prefixes = tuple(f"{p}:".encode() for p in world.partners)
    decisions_topic, dlq = rig.topics.import_decisions, rig.topics.account_discovered_dlq
    mine = [r for r in rig.reader.records if r.key is not None and r.key.startswith(prefixes)]
    dead = [r for r in rig.reader.records if r.topic == dlq]
    by_id: dict[str, list[Out]] = defaultdict(list)
    for r in mine:
        by_id[r.envelope["id"]].append(r)
    seen_decisions = {i for i, c in by_id.items() if c[0].topic == decisions_topic}
    seen_commands = {i for i, c in by_id.items() if c[0].topic != decisions_topic}
    mismatched = sum(
        1
        for copies in by_id.values()
        if len(copies) > 1
        and (len({c.topic for c in copies}) > 1 or len({_without_time(c) for c in copies}) > 1)
    )
    wrong_content = 0
    for i in seen_decisions & set(expected_decisions):
        data = by_id[i][0].envelope["data"]
        if (data["outcome"], data["command_ids"]) != expected_decisions[i]:
            wrong_content += 1

    rows = await db.fetch(
        "SELECT account_key, decision_id FROM import_worker.ledger WHERE partner_id = ANY($1)",
        world.partners,
    )
    ledger = {r["account_key"]: str(r["decision_id"]) for r in rows}
    ledger_wrong = sum(
        1 for key in imported if ledger.get(key) != str(decision_id(key, first[key].event_id))
    )
    committed = await rig.committed()
    end = end_offsets(sent)

    lost_decisions = len(set(expected_decisions) - seen_decisions)
    lost_commands = len(expected_commands - seen_commands)
    duplicates = len(mine) - len(by_id)
    result.figures.update(
        {
            "events": len(sent),
            "accounts": len(first),
            "decisions lost": lost_decisions,
            "ledger rows/imported accounts": f"{len(ledger)}/{len(imported)}",
            "commands on wire/distinct ids": f"{sum(1 for r in mine if r.topic != decisions_topic)}"
            f"/{len(seen_commands)}",
            "duplicates (same id, same data)": f"{duplicates} ({mismatched} differ)",
            "commands lost": lost_commands,
        }
    )
    result.check("decisions lost = 0", lost_decisions == 0)
    result.check("no unexpected decision", seen_decisions <= set(expected_decisions))
    result.check("decisions carry the expected outcome and commands", wrong_content == 0)
    result.check("ledger rows = imported accounts", len(ledger) == len(imported))
    result.check("ledger holds each account's first decision", ledger_wrong == 0)
    result.check("commands lost = 0", lost_commands == 0)
    result.check("no unexpected command", seen_commands <= expected_commands)
    result.check("every duplicate has the same id and data", mismatched == 0)
    result.check("no dead letters for valid input", not dead)
    result.check(
        "every input offset committed, exactly",
        all(committed.get(p) == o for p, o in end.items()),
    )
    if order:
        violations = order_violations(mine, decisions_topic, sent)
        result.figures["per-customer order violations"] = violations
        result.check("per-customer order of decisions", violations == 0)


def order_violations(records: list[Out], decisions_topic: str, sent: list[Sent]) -> int:
    """Decisions of one customer (first copy of each) out of their discoveries' order.

    A customer's discoveries share one input partition and so are ordered; its
    decisions, keyed by account, spread over the decision topic's partitions. In each
    of those, the first copies must follow the order of their causes.
    """
    position = {s.event_id: s.offset for s in sent}
    decisions = sorted(
        (r for r in records if r.topic == decisions_topic), key=lambda r: (r.partition, r.offset)
    )
    seen: set[str] = set()
    last: dict[tuple[int, str], int] = {}
    violations = 0
    for r in decisions:
        envelope: dict[str, Any] = r.envelope
        if envelope["id"] in seen:
            continue
        seen.add(envelope["id"])
        at = position.get(envelope["causationid"])
        if at is None:
            continue
        customer = envelope["subject"].split(":")[1]
        slot = (r.partition, customer)
        if at < last.get(slot, -1):
            violations += 1
        last[slot] = max(last.get(slot, -1), at)
    return violations
