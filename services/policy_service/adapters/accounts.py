"""The accounts read model in PostgreSQL: one batch in per transaction, pages out.

:meth:`AccountStore.apply` takes a batch already reduced to one decision per
account and one result per command (:mod:`~services.policy_service.domain.accounts`)
and writes it in a handful of set-based statements, whatever its size: lock
the accounts it touches (in key order, so two projections never deadlock on
them), upsert the decisions that win, add their commands as pending, upsert
the results that are newer, roll the touched accounts' statuses up and move
the per-status counts by the difference. Every statement is guarded by the
same "newer wins" rule as the domain's, so replaying a batch changes nothing.
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.policy_service.domain.accounts import (
    AccountStatus,
    CountKey,
    DecisionRow,
    ResultRow,
    command_statuses,
    count_changes,
    plain_refs,
    roll_up,
)

S = "policy_service"


@dataclass(frozen=True)
class Applied:
    decisions: int  # decisions that won (new, or newer than the one kept)
    results: int  # results that were newer than the one kept
    statuses: int  # accounts whose status changed


@dataclass(frozen=True)
class AccountFilter:
    partner_id: str
    customer_id: uuid.UUID | None = None
    account_type: str | None = None
    status: str | None = None
    q: str | None = None


AccountCursor = tuple[datetime, str]


class AccountStore:
    """SQL of the accounts read model, on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # -- the projection ---------------------------------------------------------

    async def apply(
        self, decisions: Sequence[DecisionRow], results: Sequence[ResultRow]
    ) -> Applied:
        keys = sorted({d.key for d in decisions} | {r.result.account_key for r in results})
        async with self.conn.transaction():
            before = _counted(
                await self.conn.fetch(
                    f"""SELECT key, partner_id, customer_id, account_type, status
                        FROM {S}.accounts WHERE key = ANY($1::text[])
                        ORDER BY key FOR UPDATE""",
                    keys,
                )
            )
            won = await self._decisions(decisions) if decisions else []
            newer = await self._results(results) if results else 0
            after, changed = await self._roll_up(keys)
            await self._count(count_changes(before, after))
        return Applied(len(won), newer, changed)

    async def _decisions(self, rows: Sequence[DecisionRow]) -> list[str]:
        won = await self.conn.fetch(
            f"""INSERT INTO {S}.accounts AS a
                  (key, partner_id, customer_id, account_type, directory, username,
                   display_name, email, search, decision_id, outcome, policy_id,
                   policy_version, notes, command_ids, decided_at, status)
                SELECT r.key, r.partner_id, r.customer_id, r.account_type, r.directory,
                       r.username, r.display_name, r.email, r.search, r.decision_id,
                       r.outcome, r.policy_id, r.policy_version, r.notes::jsonb,
                       r.command_ids::jsonb, r.decided_at, 'pending'
                FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[], $9::text[], $10::uuid[],
                            $11::text[], $12::uuid[], $13::int[], $14::text[], $15::text[],
                            $16::timestamptz[])
                     AS r(key, partner_id, customer_id, account_type, directory, username,
                          display_name, email, search, decision_id, outcome, policy_id,
                          policy_version, notes, command_ids, decided_at)
                ON CONFLICT (key) DO UPDATE SET
                    account_type = excluded.account_type, directory = excluded.directory,
                    username = excluded.username, display_name = excluded.display_name,
                    email = excluded.email, search = excluded.search,
                    decision_id = excluded.decision_id, outcome = excluded.outcome,
                    policy_id = excluded.policy_id, policy_version = excluded.policy_version,
                    notes = excluded.notes, command_ids = excluded.command_ids,
                    decided_at = excluded.decided_at, projected_at = now()
                WHERE a.partner_id = excluded.partner_id
                  AND (a.outcome = 'imported', a.decided_at, a.decision_id)
                    < (excluded.outcome = 'imported', excluded.decided_at, excluded.decision_id)
                RETURNING key""",
            *_decision_columns(rows),
        )
        return sorted(r["key"] for r in won)

    async def _results(self, rows: Sequence[ResultRow]) -> int:
        status = await self.conn.execute(
            f"""INSERT INTO {S}.account_commands AS c
                  (command_id, account_key, partner_id, command_type, status, outcome,
                   reason, provider, refs, detail, result_id, finished_at, updated_at)
                SELECT r.id, r.key, r.partner_id, r.type, r.status, r.outcome, r.reason,
                       r.provider, r.refs::jsonb, r.detail, r.result_id, r.finished_at, now()
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::uuid[], $12::timestamptz[])
                     AS r(id, key, partner_id, type, status, outcome, reason, provider, refs,
                          detail, result_id, finished_at)
                ON CONFLICT (command_id) DO UPDATE SET
                    command_type = excluded.command_type, status = excluded.status,
                    outcome = excluded.outcome, reason = excluded.reason,
                    provider = excluded.provider, refs = excluded.refs,
                    detail = excluded.detail, result_id = excluded.result_id,
                    finished_at = excluded.finished_at, updated_at = now()
                WHERE c.partner_id = excluded.partner_id AND c.account_key = excluded.account_key
                  AND (c.finished_at, c.result_id) < (excluded.finished_at, excluded.result_id)""",
            *_result_columns(rows),
        )
        return int(status.split()[-1])

    async def _roll_up(self, keys: list[str]) -> tuple[dict[str, CountKey], int]:
        """Each touched account's status from its commands; how many changed."""
        rows = await self.conn.fetch(
            f"""SELECT a.key, a.partner_id, a.customer_id, a.account_type, a.outcome,
                       a.status, a.command_ids::text AS command_ids,
                       coalesce(array_agg(c.command_id) FILTER (WHERE c.status IS NOT NULL),
                                '{{}}') AS reported,
                       coalesce(array_agg(c.status) FILTER (WHERE c.status IS NOT NULL),
                                '{{}}') AS statuses
                FROM {S}.accounts a
                LEFT JOIN {S}.account_commands c ON c.account_key = a.key
                WHERE a.key = ANY($1::text[])
                GROUP BY a.key""",
            keys,
        )
        after: dict[str, CountKey] = {}
        moved: list[tuple[str, str]] = []
        for r in rows:
            reported = dict(zip(map(str, r["reported"]), r["statuses"], strict=True))
            status = roll_up(r["outcome"], command_statuses(json.loads(r["command_ids"]), reported))
            after[r["key"]] = (r["partner_id"], r["customer_id"], r["account_type"], status)
            if status != r["status"]:
                moved.append((r["key"], status))
        if moved:
            await self.conn.execute(
                f"""UPDATE {S}.accounts a SET status = m.status
                    FROM unnest($1::text[], $2::text[]) AS m(key, status)
                    WHERE a.key = m.key""",
                [k for k, _ in moved],
                [s for _, s in moved],
            )
        return after, len(moved)

    async def _count(self, moves: dict[CountKey, int]) -> None:
        if not moves:
            return
        ordered = sorted(moves.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), *kv[0][2:]))
        await self.conn.execute(
            f"""INSERT INTO {S}.account_counts AS n
                  (partner_id, customer_id, account_type, status, accounts)
                SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[],
                                     $5::bigint[])
                ON CONFLICT (partner_id, customer_id, account_type, status)
                DO UPDATE SET accounts = n.accounts + excluded.accounts""",
            [k[0] for k, _ in ordered],
            [k[1] for k, _ in ordered],
            [k[2] for k, _ in ordered],
            [k[3] for k, _ in ordered],
            [n for _, n in ordered],
        )

    # -- the API's reads ----------------------------------------------------------

    async def page(
        self, where: AccountFilter, after: AccountCursor | None, limit: int
    ) -> list[asyncpg.Record]:
        """Up to ``limit`` accounts, newest first, after ``after``."""
        sql, args = _where(where)
        if after is not None:
            args += [after[0], after[1]]
            sql += f" AND (decided_at, key) < (${len(args) - 1}, ${len(args)})"
        args.append(limit)
        return list(
            await self.conn.fetch(
                f"SELECT * FROM {S}.accounts WHERE {sql}"
                f" ORDER BY decided_at DESC, key DESC LIMIT ${len(args)}",
                *args,
            )
        )

    async def one(self, partner_id: str, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f"SELECT * FROM {S}.accounts WHERE key = $1 AND partner_id = $2", key, partner_id
        )

    async def commands(self, partner_id: str, keys: list[str]) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                f"""SELECT * FROM {S}.account_commands
                    WHERE account_key = ANY($1::text[]) AND partner_id = $2""",
                keys,
                partner_id,
            )
        )

    async def counts(
        self, partner_id: str, customer_id: uuid.UUID | None, account_type: str | None
    ) -> dict[str, int]:
        rows = await self.conn.fetch(
            f"""SELECT status, sum(accounts)::bigint AS n FROM {S}.account_counts
                WHERE partner_id = $1
                  AND ($2::uuid IS NULL OR customer_id = $2)
                  AND ($3::text IS NULL OR account_type = $3)
                GROUP BY status""",
            partner_id,
            customer_id,
            account_type,
        )
        found = {r["status"]: int(r["n"]) for r in rows}
        return {s.value: found.get(s.value, 0) for s in AccountStatus}


def _counted(rows: Sequence[asyncpg.Record]) -> dict[str, CountKey]:
    return {
        r["key"]: (r["partner_id"], r["customer_id"], r["account_type"], r["status"]) for r in rows
    }


def _decision_columns(rows: Sequence[DecisionRow]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(16)]
    for d in rows:
        a, data = d.decision.account, d.decision
        values = (
            d.key,
            d.partner_id,
            a.customer_id,
            a.account_type.value,
            a.directory.value,
            a.username,
            a.display_name,
            a.email,
            d.search,
            d.decision_id,
            data.outcome.value,
            data.policy_id,
            data.policy_version,
            json.dumps([n.model_dump(mode="json") for n in data.notes]),
            json.dumps([str(c) for c in data.command_ids]),
            d.decided_at,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _result_columns(rows: Sequence[ResultRow]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(12)]
    for row in rows:
        r = row.result
        said = getattr(r, "outcome", None)
        why = getattr(r, "reason", None)
        values = (
            r.command_id,
            r.account_key,
            row.partner_id,
            r.command_type,
            row.status.value,
            said.value if said is not None else None,
            why.value if why is not None else None,
            r.provider,
            json.dumps(plain_refs(r)),
            r.detail or None,
            row.result_id,
            r.finished_at,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _where(f: AccountFilter) -> tuple[str, list[Any]]:
    clauses, args = ["partner_id = $1"], list[Any]([f.partner_id])
    for column, value in (
        ("customer_id", f.customer_id),
        ("account_type", f.account_type),
        ("status", f.status),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if f.q:
        args.append("%" + _escape_like(f.q.lower()) + "%")
        clauses.append(f"search LIKE ${len(args)}")
    return " AND ".join(clauses), args


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
