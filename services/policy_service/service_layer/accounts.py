"""Reading the accounts read model: every role of the partner may; no one else."""

import json
from dataclasses import dataclass

import asyncpg

from services.policy_service.adapters.accounts import AccountCursor, AccountFilter, AccountStore
from services.policy_service.adapters.database import Database
from services.policy_service.domain.accounts import CommandView, account_commands
from services.policy_service.domain.auth import Principal
from services.policy_service.service_layer.errors import Forbidden, NotFound


@dataclass(frozen=True)
class AccountFound:
    """An account's row and its commands' rows, in the decision's order."""

    row: asyncpg.Record
    commands: list[CommandView]


@dataclass(frozen=True)
class AccountsPage:
    items: list[AccountFound]
    more: bool
    counts: dict[str, int]


class AccountService:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _reader(principal: Principal) -> None:
        if not principal.may_read():
            raise Forbidden(f"role {principal.role!r} may not read accounts")

    async def page(
        self, principal: Principal, where: AccountFilter, after: AccountCursor | None, limit: int
    ) -> AccountsPage:
        self._reader(principal)
        async with self.db.pool.acquire() as conn:
            store = AccountStore(conn)
            rows = await store.page(where, after, limit + 1)
            shown = rows[:limit]
            commands = await store.commands(where.partner_id, [r["key"] for r in shown])
            counts = await store.counts(where.partner_id, where.customer_id, where.account_type)
        return AccountsPage(_with_commands(shown, commands), len(rows) > limit, counts)

    async def get(self, principal: Principal, key: str) -> AccountFound:
        async with self.db.pool.acquire() as conn:
            store = AccountStore(conn)
            row = await store.one(principal.partner_id, key)
            if row is None:
                raise NotFound("no such account")  # another partner's too: never a 403
            self._reader(principal)
            commands = await store.commands(principal.partner_id, [key])
        return _with_commands([row], commands)[0]


def _with_commands(
    rows: list[asyncpg.Record], commands: list[asyncpg.Record]
) -> list[AccountFound]:
    by_account: dict[str, list[CommandView]] = {}
    for c in commands:
        by_account.setdefault(c["account_key"], []).append(
            CommandView(
                id=c["command_id"],
                type=c["command_type"],
                status=c["status"],
                outcome=c["outcome"],
                reason=c["reason"],
                provider=c["provider"],
                refs=json.loads(c["refs"]),
                detail=c["detail"],
                updated_at=c["updated_at"],
            )
        )
    return [
        AccountFound(
            row,
            account_commands(
                row["key"],
                json.loads(row["command_ids"]),
                row["decided_at"],
                by_account.get(row["key"], []),
            ),
        )
        for row in rows
    ]
