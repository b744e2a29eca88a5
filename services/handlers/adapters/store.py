"""The handlers' tables (schema ``handlers``): integrations, the inbox, links, passwords.

Every write that goes with a result (the inbox row turning ``done``, the link
it found) happens in one transaction, after the result was acknowledged by the
broker: a crash in between redoes the command, which finds its own records
again and sends the same result (same id).
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.integrations import IntegrationConfigured, IntegrationRemoved


@dataclass(frozen=True)
class StoredIntegration:
    partner_id: str
    provider: str
    base_url: str
    settings: dict[str, Any]
    enabled: bool
    credentials_ciphertext: str | None
    version: int


@dataclass(frozen=True)
class InboxEntry:
    """What the inbox knows of a command: done (with its result) or started N times."""

    done: bool
    attempts: int
    result_type: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredDocLink:
    account_key: str
    command_id: uuid.UUID
    provider: str
    organization_id: str
    entry_id: str | None
    url: str | None
    command: dict[str, Any]


@dataclass(frozen=True)
class SealedPassword:
    change_id: str
    changed_at: datetime
    ciphertext: str
    changed_by: str


@dataclass(frozen=True)
class Deferral:
    """What :meth:`Store.defer_unless_known` found: the password (None: the link was
    saved deferred), and when this command's earlier attempt deferred the entry, if
    one did and a change has taken the create over since."""

    known: SealedPassword | None
    handed_over_at: datetime | None = None


_UPSERT_INTEGRATION = """
INSERT INTO handlers.integrations AS i
    (partner_id, provider, base_url, settings, enabled, credentials_ciphertext, version, removed)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
ON CONFLICT (partner_id, provider) DO UPDATE SET
    base_url = EXCLUDED.base_url, settings = EXCLUDED.settings, enabled = EXCLUDED.enabled,
    credentials_ciphertext = EXCLUDED.credentials_ciphertext, version = EXCLUDED.version,
    removed = EXCLUDED.removed, projected_at = now()
WHERE i.version < EXCLUDED.version
RETURNING version
"""


#: Serialises, per account, "remember a password change and read its targets" with
#: "read the known password and create a target" (a deferred documentation link, a
#: vault entry): a change and a command of one account travel on different topics
#: and may run at the same moment, and without it each could miss the other (the
#: entry left deferred, the vault without its secret). Held for short transactions
#: only, never across a vendor call.
ACCOUNT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 20261201))"

#: The inbox keeps a command's latest result: a documentation link has two writers
#: (its command, and the password change that makes its deferred entry), and a redo
#: of the command reporting what its first attempt reached (``deferred``) must not
#: replace the ``created`` the change wrote meanwhile. Both writers take the inbox
#: row before the link's row, so that they never deadlock.
_KEEP = """coalesce((x.result->>'finished_at')::timestamptz
               > ($4::jsonb->>'finished_at')::timestamptz, false)"""
_KEEP_LATEST_RESULT = f"""
UPDATE handlers.inbox AS x SET
    result_type = CASE WHEN {_KEEP} THEN x.result_type ELSE $2 END,
    result_id = CASE WHEN {_KEEP} THEN x.result_id ELSE $3 END,
    result = CASE WHEN {_KEEP} THEN x.result ELSE $4::jsonb END,
    updated_at = now(){{done}}
WHERE x.command_id = $1"""
_FINISH_COMMAND = _KEEP_LATEST_RESULT.format(done=", state = 'done'")
_CHANGE_RESULT = _KEEP_LATEST_RESULT.format(done="")

_LATEST = """SELECT change_id, changed_at, ciphertext, changed_by FROM handlers.latest_passwords
             WHERE account_key = $1"""


async def latest_password(
    conn: asyncpg.Connection | asyncpg.Pool, account_key: str
) -> SealedPassword | None:
    return _sealed(await conn.fetchrow(_LATEST, account_key))


def _sealed(row: asyncpg.Record | None) -> SealedPassword | None:
    if row is None:
        return None
    return SealedPassword(row["change_id"], row["changed_at"], row["ciphertext"], row["changed_by"])


class Store:
    """All the handlers' reads and writes, on one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- integrations (projection of integration.events) -------------------------

    async def apply_integration(self, state: IntegrationConfigured | IntegrationRemoved) -> bool:
        """Version-guarded: False when an equal or newer version is already there."""
        if isinstance(state, IntegrationRemoved):
            args: tuple[Any, ...] = (
                state.partner_id,
                state.provider.value,
                "",
                "{}",
                False,
                None,
                state.version,
                True,
            )
        else:
            args = (
                state.partner_id,
                state.provider.value,
                state.base_url,
                json.dumps(state.settings),
                state.enabled,
                state.credentials_ciphertext,
                state.version,
                False,
            )
        return await self.pool.fetchval(_UPSERT_INTEGRATION, *args) is not None

    async def integration(self, partner_id: str, provider: str) -> StoredIntegration | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM handlers.integrations"
            " WHERE partner_id = $1 AND provider = $2 AND NOT removed",
            partner_id,
            provider,
        )
        if row is None:
            return None
        return StoredIntegration(
            partner_id=row["partner_id"],
            provider=row["provider"],
            base_url=row["base_url"],
            settings=json.loads(row["settings"]),
            enabled=row["enabled"],
            credentials_ciphertext=row["credentials_ciphertext"],
            version=row["version"],
        )

    # -- the inbox ----------------------------------------------------------------

    async def begin(
        self,
        command_id: uuid.UUID,
        command_type: str,
        account_key: str,
        partner_id: str,
        provider: str | None,
    ) -> InboxEntry:
        """Record the intent (one more attempt) unless the command is done already."""
        row = await self.pool.fetchrow(
            """INSERT INTO handlers.inbox AS x
                   (command_id, command_type, account_key, partner_id, provider, state, attempts)
               VALUES ($1, $2, $3, $4, $5, 'started', 1)
               ON CONFLICT (command_id) DO UPDATE SET
                   attempts = CASE WHEN x.state = 'done' THEN x.attempts ELSE x.attempts + 1 END,
                   updated_at = CASE WHEN x.state = 'done' THEN x.updated_at ELSE now() END
               RETURNING state, attempts, result_type, result""",
            command_id,
            command_type,
            account_key,
            partner_id,
            provider,
        )
        done = row["state"] == "done"
        result = json.loads(row["result"]) if row["result"] is not None else None
        return InboxEntry(done, row["attempts"], row["result_type"], result)

    async def inbox_entry(self, command_id: uuid.UUID) -> InboxEntry | None:
        row = await self.pool.fetchrow(
            "SELECT state, attempts, result_type, result FROM handlers.inbox WHERE command_id = $1",
            command_id,
        )
        if row is None:
            return None
        result = json.loads(row["result"]) if row["result"] is not None else None
        return InboxEntry(row["state"] == "done", row["attempts"], row["result_type"], result)

    async def unpark(self, command_id: uuid.UUID) -> None:
        await self.pool.execute(
            "DELETE FROM handlers.welcome_waits WHERE command_id = $1", command_id
        )

    async def finish(
        self,
        command_id: uuid.UUID,
        result_type: str,
        result_id: uuid.UUID,
        result: dict[str, Any],
        *,
        doc_link: StoredDocLink | None = None,
        psa_link: tuple[str, str, str, str, str | None, str | None] | None = None,
        unpark: bool = False,
    ) -> None:
        """The command is done: its result, and what it linked, in one transaction (a
        PSA link wakes the account's welcome email waiting for its address; ``unpark``:
        the command was a waiting welcome email)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _FINISH_COMMAND,
                command_id,
                result_type,
                result_id,
                json.dumps(result),
            )
            if doc_link is not None:
                await self._save_doc_link(conn, doc_link)
            if psa_link is not None:
                await conn.execute(
                    """INSERT INTO handlers.psa_links
                           (account_key, command_id, partner_id, provider, contact_id, email, phone)
                       VALUES ($1, $6, $2, $3, $4, $5, $7)
                       ON CONFLICT (account_key) DO UPDATE SET command_id = EXCLUDED.command_id,
                           provider = EXCLUDED.provider, contact_id = EXCLUDED.contact_id,
                           email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()""",
                    psa_link[0],
                    psa_link[1],
                    psa_link[2],
                    psa_link[3],
                    psa_link[4],
                    command_id,
                    psa_link[5],
                )
                await conn.execute(
                    """UPDATE handlers.welcome_waits SET next_try = now()
                       WHERE account_key = $1 AND next_try > now()
                         AND (claimed_until IS NULL OR claimed_until < now())""",
                    psa_link[0],
                )
            if unpark:
                await conn.execute(
                    "DELETE FROM handlers.welcome_waits WHERE command_id = $1", command_id
                )

    @staticmethod
    async def _save_doc_link(conn: asyncpg.Connection, link: StoredDocLink) -> None:
        await conn.execute(
            """INSERT INTO handlers.doc_links
                   (account_key, command_id, partner_id, provider, organization_id, entry_id,
                    url, command)
               VALUES ($1, $2, split_part($1, ':', 1), $3, $4, $5, $6, $7::jsonb)
               ON CONFLICT (account_key) DO UPDATE SET command_id = EXCLUDED.command_id,
                   provider = EXCLUDED.provider, organization_id = EXCLUDED.organization_id,
                   entry_id = EXCLUDED.entry_id, url = EXCLUDED.url, command = EXCLUDED.command,
                   updated_at = now()""",
            link.account_key,
            link.command_id,
            link.provider,
            link.organization_id,
            link.entry_id,
            link.url,
            json.dumps(link.command),
        )

    # -- password changes -----------------------------------------------------------

    async def latest_password(self, account_key: str) -> SealedPassword | None:
        return await latest_password(self.pool, account_key)

    async def defer_unless_known(self, link: StoredDocLink) -> Deferral:
        """The account's password, if one is known; if not, ``link`` (deferred) is saved
        before the account's lock is let go, so a change arriving meanwhile finds it
        (see :data:`ACCOUNT_LOCK`).

        A known password beside this command's own deferred link means an earlier
        attempt deferred the entry and died before it was done, and a change came
        after: that change found the link and makes the entry, so the answer says when
        the deferral was made (``handed_over_at``) and this attempt must not create."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ACCOUNT_LOCK, link.account_key)
            known = await latest_password(conn, link.account_key)
            if known is None:
                await self._save_doc_link(conn, link)
                return Deferral(None)
            deferred_at: datetime | None = await conn.fetchval(
                """SELECT updated_at FROM handlers.doc_links
                   WHERE account_key = $1 AND command_id = $2 AND entry_id IS NULL""",
                link.account_key,
                link.command_id,
            )
            return Deferral(known, deferred_at)

    async def save_link_and_newer(self, link: StoredDocLink) -> SealedPassword | None:
        """Save ``link`` (its entry known) under the account's lock; then the account's
        newest password if it was remembered after the link's command first began.

        Such a change found no link to update (the command saves it only now), so it
        skipped documentation: the command sets it. A change remembered after this
        finds the link and updates the entry itself (see :data:`ACCOUNT_LOCK`)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ACCOUNT_LOCK, link.account_key)
            await self._save_doc_link(conn, link)
            row = await conn.fetchrow(
                """SELECT p.change_id, p.changed_at, p.ciphertext, p.changed_by
                   FROM handlers.latest_passwords AS p
                   JOIN handlers.inbox AS i ON i.command_id = $2
                   WHERE p.account_key = $1 AND p.remembered_at > i.started_at""",
                link.account_key,
                link.command_id,
            )
        return _sealed(row)

    async def doc_link(self, account_key: str) -> StoredDocLink | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM handlers.doc_links WHERE account_key = $1", account_key
        )
        if row is None:
            return None
        return StoredDocLink(
            account_key=row["account_key"],
            command_id=row["command_id"],
            provider=row["provider"],
            organization_id=row["organization_id"],
            entry_id=row["entry_id"],
            url=row["url"],
            command=json.loads(row["command"]),
        )

    async def finish_change(
        self,
        change_id: str,
        target: str,
        account_key: str,
        *,
        doc_link: StoredDocLink | None = None,
        result: tuple[uuid.UUID, str, uuid.UUID, dict[str, Any]] | None = None,
    ) -> None:
        """A change applied to one target, with the link it updated and the command's
        latest result, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO handlers.password_changes (change_id, target, account_key)
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
                change_id,
                target,
                account_key,
            )
            if result is not None:  # the inbox row before the link, as finish() does
                command_id, result_type, result_id, data = result
                await conn.execute(
                    _CHANGE_RESULT,
                    command_id,
                    result_type,
                    result_id,
                    json.dumps(data),
                )
            if doc_link is not None:
                await self._save_doc_link(conn, doc_link)
