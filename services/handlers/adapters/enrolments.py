"""The handlers' per-account state besides the inbox and links: vault entries, rotations,
enrolments, and the welcome emails (waiting, and sent).

The vault's secrets are sealed twice (envelope encryption): the password with a
fresh data key at every write, the data key under ``SECRETS_KEY`` (associated
data ``vault:<account key>``). Only :class:`services.infra.secrets.SecretBox`
touches keys; this module moves ciphertext.
"""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.handlers.adapters.store import ACCOUNT_LOCK, SealedPassword, latest_password


@dataclass(frozen=True)
class VaultEntry:
    account_key: str
    command_id: uuid.UUID
    wrapped_key: str | None
    secret_ciphertext: str | None
    version: int


@dataclass(frozen=True)
class Rotation:
    account_key: str
    partner_id: str
    customer_id: uuid.UUID
    command_id: uuid.UUID
    interval_days: int
    next_due: datetime
    requests: int
    request_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Enrolment:
    account_key: str
    kind: str
    command_id: uuid.UUID
    principal: str | None


@dataclass(frozen=True)
class ChangeTargets:
    """What a password change of one account applies to, and what it did already."""

    applied: frozenset[str]
    has_doc_link: bool
    vault_command: uuid.UUID | None
    rotation_command: uuid.UUID | None
    m365: Enrolment | None


@dataclass(frozen=True)
class Wait:
    """A parked welcome email: its command event, how often it was looked at, since when."""

    envelope: dict[str, Any]
    tries: int
    waiting_since: datetime


@dataclass(frozen=True)
class WelcomeSent:
    command_id: uuid.UUID
    message_id: str
    sent_at: datetime


#: What ``rewrap-keys`` re-seals: table -> (table name, column), fixed names only.
_SEALED = {
    "vault": ("vault_entries", "wrapped_key"),
    "passwords": ("latest_passwords", "ciphertext"),
}

_TARGETS = """
SELECT
    EXISTS (SELECT 1 FROM handlers.doc_links WHERE account_key = $1) AS doc,
    (SELECT command_id FROM handlers.vault_entries WHERE account_key = $1) AS vault,
    (SELECT command_id FROM handlers.rotations WHERE account_key = $1) AS rotation,
    (SELECT command_id FROM handlers.enrolments
        WHERE account_key = $1 AND kind = 'm365_password_sync') AS m365,
    (SELECT principal FROM handlers.enrolments
        WHERE account_key = $1 AND kind = 'm365_password_sync') AS principal,
    ARRAY(SELECT target FROM handlers.password_changes WHERE change_id = $2) AS applied
"""


class DueRotations:
    """A locked batch of due rotations (see :meth:`EnrolmentStore.due_rotations`)."""

    def __init__(self, rotations: list[Rotation], conn: asyncpg.Connection) -> None:
        self.rotations = rotations
        self._conn = conn

    async def requested(self, account_key: str, request_id: uuid.UUID) -> None:
        await self._conn.execute(
            """UPDATE handlers.rotations SET requested_at = now(), request_id = $2,
                   requests = requests + 1 WHERE account_key = $1""",
            account_key,
            request_id,
        )


class EnrolmentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- vault ------------------------------------------------------------------------

    async def open_vault_entry(
        self, account_key: str, partner_id: str, customer_id: uuid.UUID, command_id: uuid.UUID
    ) -> SealedPassword | None:
        """The entry exists from ``vault.password.store`` on; the account's password if
        one is known already (the entry is made under the account's lock, so a change
        either sees the entry or is seen here)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ACCOUNT_LOCK, account_key)
            await conn.execute(
                """INSERT INTO handlers.vault_entries
                       (account_key, partner_id, customer_id, command_id)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (account_key) DO NOTHING""",
                account_key,
                partner_id,
                customer_id,
                command_id,
            )
            return await latest_password(conn, account_key)

    async def remember_change(
        self,
        account_key: str,
        change_id: str,
        changed_at: datetime,
        ciphertext: str,
        changed_by: str,
    ) -> ChangeTargets | None:
        """Keep the change (still sealed) as the account's newest, and what it applies
        to, under the account's lock; None when a later change was seen already (this
        one is superseded)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ACCOUNT_LOCK, account_key)
            newest = await conn.fetchval(
                """INSERT INTO handlers.latest_passwords AS p
                       (account_key, change_id, changed_at, ciphertext, changed_by,
                        remembered_at)
                   VALUES ($1, $2, $3, $4, $5, clock_timestamp())
                   ON CONFLICT (account_key) DO UPDATE SET change_id = EXCLUDED.change_id,
                       changed_at = EXCLUDED.changed_at, ciphertext = EXCLUDED.ciphertext,
                       changed_by = EXCLUDED.changed_by, remembered_at = clock_timestamp()
                   WHERE p.changed_at <= EXCLUDED.changed_at
                   RETURNING 1""",
                account_key,
                change_id,
                changed_at,
                ciphertext,
                changed_by,
            )
            if newest is None:
                return None
            return _targets(account_key, await conn.fetchrow(_TARGETS, account_key, change_id))

    async def vault_entry(self, account_key: str) -> VaultEntry | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM handlers.vault_entries WHERE account_key = $1", account_key
        )
        if row is None:
            return None
        return VaultEntry(
            row["account_key"],
            row["command_id"],
            row["wrapped_key"],
            row["secret_ciphertext"],
            row["version"],
        )

    async def replace_secret(
        self,
        account_key: str,
        *,
        wrapped_key: str,
        secret_ciphertext: str,
        change_id: str,
        changed_at: datetime,
        changed_by: str,
    ) -> int:
        """Set the secret (once per change: the same change again changes nothing); keep
        the replaced version's metadata. The entry's version."""
        async with self.pool.acquire() as conn, conn.transaction():
            version: int | None = await conn.fetchval(
                """UPDATE handlers.vault_entries SET wrapped_key = $2, secret_ciphertext = $3,
                       version = version + 1, change_id = $4, changed_at = $5,
                       updated_at = now()
                   WHERE account_key = $1 AND change_id IS DISTINCT FROM $4
                   RETURNING version""",
                account_key,
                wrapped_key,
                secret_ciphertext,
                change_id,
                changed_at,
            )
            if version is None:
                current: int = await conn.fetchval(
                    "SELECT version FROM handlers.vault_entries WHERE account_key = $1",
                    account_key,
                )
                return current
            await conn.execute(
                """UPDATE handlers.vault_history SET replaced_at = $3
                   WHERE account_key = $1 AND version = $2 - 1 AND replaced_at IS NULL""",
                account_key,
                version,
                changed_at,
            )
            await conn.execute(
                """INSERT INTO handlers.vault_history
                       (account_key, version, change_id, changed_at, changed_by)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                account_key,
                version,
                change_id,
                changed_at,
                changed_by,
            )
            return version

    async def sealed_rows(
        self, table: str, after: str = "", limit: int = 500
    ) -> list[tuple[str, str]]:
        """(account key, what is sealed under SECRETS_KEY) of ``vault`` (the data keys) or
        ``passwords`` (the last known passwords), in key order after ``after``."""
        name, column = _SEALED[table]
        rows = await self.pool.fetch(
            f"""SELECT account_key, {column} AS sealed FROM handlers.{name}
                WHERE {column} IS NOT NULL AND account_key > $1
                ORDER BY account_key LIMIT $2""",
            after,
            limit,
        )
        return [(r["account_key"], r["sealed"]) for r in rows]

    async def reseal(self, table: str, account_key: str, old: str, new: str) -> bool:
        """Replace one sealed value, unless it changed meanwhile."""
        name, column = _SEALED[table]
        done = await self.pool.fetchval(
            f"""UPDATE handlers.{name} SET {column} = $3
                WHERE account_key = $1 AND {column} = $2 RETURNING 1""",
            account_key,
            old,
            new,
        )
        return done is not None

    # -- rotation ---------------------------------------------------------------------

    async def enrol_rotation(
        self,
        account_key: str,
        partner_id: str,
        customer_id: uuid.UUID,
        command_id: uuid.UUID,
        interval_days: int,
    ) -> datetime:
        """Enrol (once: a repeat keeps the schedule); when the first rotation is due."""
        due: datetime = await self.pool.fetchval(
            """INSERT INTO handlers.rotations AS r
                   (account_key, partner_id, customer_id, command_id, interval_days, next_due)
               VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $5 * 24))
               ON CONFLICT (account_key) DO UPDATE SET interval_days = r.interval_days
               RETURNING next_due""",
            account_key,
            partner_id,
            customer_id,
            command_id,
            interval_days,
        )
        return due

    async def rotation(self, account_key: str) -> Rotation | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM handlers.rotations WHERE account_key = $1", account_key
        )
        return _rotation(row) if row else None

    async def reschedule(self, account_key: str, changed_at: datetime) -> datetime | None:
        """A new password: the next rotation falls due an interval after it."""
        due: datetime | None = await self.pool.fetchval(
            """UPDATE handlers.rotations SET requested_at = NULL, request_id = NULL,
                   next_due = GREATEST(
                       next_due, $2::timestamptz + make_interval(hours => interval_days * 24))
               WHERE account_key = $1 RETURNING next_due""",
            account_key,
            changed_at,
        )
        return due

    @contextlib.asynccontextmanager
    async def due_rotations(
        self, resend_after: timedelta, limit: int
    ) -> AsyncIterator["DueRotations"]:
        """Due rotations not requested yet (or requested ``resend_after`` ago without an
        answer), locked for the transaction this opens: several replicas never take
        the same one. Marks made on the batch commit when the block ends."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT * FROM handlers.rotations
                   WHERE next_due <= now()
                     AND (requested_at IS NULL OR requested_at < now() - $1::interval)
                   ORDER BY next_due LIMIT $2 FOR UPDATE SKIP LOCKED""",
                resend_after,
                limit,
            )
            yield DueRotations([_rotation(row) for row in rows], conn)

    # -- enrolments -------------------------------------------------------------------

    async def enrol(
        self,
        account_key: str,
        kind: str,
        partner_id: str,
        customer_id: uuid.UUID,
        command_id: uuid.UUID,
        principal: str | None,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO handlers.enrolments
                   (account_key, kind, partner_id, customer_id, command_id, principal)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_key, kind) DO NOTHING""",
            account_key,
            kind,
            partner_id,
            customer_id,
            command_id,
            principal,
        )

    async def enrolment(self, account_key: str, kind: str) -> Enrolment | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM handlers.enrolments WHERE account_key = $1 AND kind = $2",
            account_key,
            kind,
        )
        if row is None:
            return None
        return Enrolment(row["account_key"], row["kind"], row["command_id"], row["principal"])

    async def commands_of(self, account_key: str) -> set[str]:
        """The command types the handlers have received for an account (any state)."""
        rows = await self.pool.fetch(
            "SELECT command_type FROM handlers.inbox WHERE account_key = $1", account_key
        )
        return {r["command_type"] for r in rows}

    # -- welcome emails ---------------------------------------------------------------

    async def psa_link_state(self, account_key: str) -> tuple[bool, str | None]:
        """(whether a PSA link command of the account is done, the linked email)."""
        row = await self.pool.fetchrow(
            """SELECT
                   EXISTS (SELECT 1 FROM handlers.inbox WHERE account_key = $1
                           AND command_type = 'psa.contact.link' AND state = 'done') AS done,
                   (SELECT email FROM handlers.psa_links WHERE account_key = $1) AS email""",
            account_key,
        )
        return bool(row["done"]), row["email"]

    async def wait(
        self, command_id: uuid.UUID, account_key: str, envelope: dict[str, Any], first_try: datetime
    ) -> None:
        """Park a welcome email for the sweeper (once: a redelivery keeps the first wait)."""
        await self.pool.execute(
            """INSERT INTO handlers.welcome_waits (command_id, account_key, envelope, next_try)
               VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (command_id) DO NOTHING""",
            command_id,
            account_key,
            json.dumps(envelope),
            first_try,
        )

    async def claim_waits(self, limit: int, lease: timedelta) -> list[Wait]:
        """Welcome emails due for a look, claimed for ``lease`` (their next look moved
        past it), so another replica does not take them meanwhile; a crash mid-look
        leaves them to be claimed again when the lease ends."""
        rows = await self.pool.fetch(
            """UPDATE handlers.welcome_waits w
               SET tries = w.tries + 1, next_try = now() + $2, claimed_until = now() + $2
               WHERE command_id IN (
                   SELECT command_id FROM handlers.welcome_waits WHERE next_try <= now()
                   ORDER BY next_try LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING envelope, tries, waiting_since""",
            limit,
            lease,
        )
        return [Wait(json.loads(r["envelope"]), r["tries"], r["waiting_since"]) for r in rows]

    async def wait_again(self, command_id: uuid.UUID, after: timedelta) -> None:
        await self.pool.execute(
            "UPDATE handlers.welcome_waits SET next_try = now() + $2, claimed_until = NULL"
            " WHERE command_id = $1",
            command_id,
            after,
        )

    async def welcome_sent(self, account_key: str) -> WelcomeSent | None:
        row = await self.pool.fetchrow(
            "SELECT command_id, message_id, sent_at FROM handlers.welcome_sent"
            " WHERE account_key = $1",
            account_key,
        )
        return WelcomeSent(row["command_id"], row["message_id"], row["sent_at"]) if row else None

    async def record_welcome(
        self, account_key: str, command_id: uuid.UUID, message_id: str
    ) -> WelcomeSent:
        """Right after the server took the message: a redo after a crash finds it here."""
        await self.pool.execute(
            """INSERT INTO handlers.welcome_sent (account_key, command_id, message_id)
               VALUES ($1, $2, $3) ON CONFLICT (account_key) DO NOTHING""",
            account_key,
            command_id,
            message_id,
        )
        sent = await self.welcome_sent(account_key)
        assert sent is not None
        return sent


def _targets(account_key: str, row: asyncpg.Record) -> ChangeTargets:
    m365 = (
        Enrolment(account_key, "m365_password_sync", row["m365"], row["principal"])
        if row["m365"] is not None
        else None
    )
    return ChangeTargets(
        applied=frozenset(row["applied"]),
        has_doc_link=row["doc"],
        vault_command=row["vault"],
        rotation_command=row["rotation"],
        m365=m365,
    )


def _rotation(row: asyncpg.Record) -> Rotation:
    return Rotation(
        row["account_key"],
        row["partner_id"],
        row["customer_id"],
        row["command_id"],
        row["interval_days"],
        row["next_due"],
        row["requests"],
        row["request_id"],
    )
