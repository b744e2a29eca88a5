"""asyncpg queries over the policy service's tables (schema ``policy_service``).

Every method runs on the connection of the current unit of work; none opens
its own transaction. Partner scoping is in every query: a row of another
partner is simply not found.
"""

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.customer import CustomerState, PolicyAssignment
from schemas.enums import AccountType
from schemas.integrations import Provider
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions
from schemas.policy import PolicyState
from services.policy_service.domain.integrations import IntegrationRecord

Cursor = tuple[datetime, uuid.UUID]


class ConcurrentChange(RuntimeError):
    """A row was not at the version a change was made from: never under the
    partner lock, a guard so that a lost update cannot pass silently."""


@dataclass(frozen=True)
class PolicyFields:
    """A change of a policy's name, description and options, made from ``version``."""

    policy_id: uuid.UUID
    name: str
    description: str
    options: EndUserOptions | AdministratorOptions
    actor: str
    at: datetime
    version: int

    def stale(self) -> ConcurrentChange:
        return ConcurrentChange(f"policy {self.policy_id} is not at version {self.version}")

    def parameters(self) -> tuple[Any, ...]:
        """The parameters of ``_UPDATE_FIELDS``, in order."""
        return (
            self.policy_id,
            self.name,
            self.description,
            _options_json(self.options),
            self.actor,
            self.at,
            self.version,
        )


_POLICY_SELECT = """
SELECT p.id, p.partner_id, p.account_type, p.name, p.description, p.is_default, p.options,
       p.version, p.created_at, p.updated_at, p.updated_by,
       COALESCE(ARRAY(SELECT a.customer_id FROM policy_service.assignments a
                      WHERE a.policy_id = p.id ORDER BY a.customer_id), '{}') AS customer_ids
FROM policy_service.policies p
"""

# A change of a policy's name, description and options, versioned in the same
# statement ($1 id, $2 name, $3 description, $4 options, $5 who, $6 when, $7 the
# version it changes); it matches no row if the policy is not at that version.
_UPDATE_FIELDS = """UPDATE policy_service.policies SET name = $2, description = $3,
       options = $4::jsonb, version = version + 1, updated_at = $6, updated_by = $5
   WHERE id = $1 AND version = $7"""

# The audit rows and outbox events of one write ($n+1 .. $n+10 after the n
# parameters of a statement before them): two data-modifying CTEs.
_RECORD = """audited AS (
       INSERT INTO policy_service.audit_log
           (partner_id, actor, action, entity_type, entity_id, version)
       SELECT p, a, c, e, i, v
       FROM unnest(${0}::text[], ${1}::text[], ${2}::text[], ${3}::text[], ${4}::uuid[],
                   ${5}::int[]) WITH ORDINALITY AS r(p, a, c, e, i, v, n)
       ORDER BY n
   ), appended AS (
       INSERT INTO policy_service.outbox (topic, key, value, headers)
       SELECT t, k, v, h::jsonb
       FROM unnest(${6}::text[], ${7}::text[], ${8}::bytea[], ${9}::text[])
           WITH ORDINALITY AS r(t, k, v, h, n)
       ORDER BY n
       RETURNING 1
   ), notified AS (
       SELECT pg_notify('policy_service_outbox', '')
       FROM (SELECT count(*) AS n FROM appended) AS events WHERE events.n > 0
   )"""


def _record(after: int) -> str:
    return _RECORD.format(*range(after + 1, after + 11))


_CUSTOMER_SELECT = """
SELECT c.id, c.partner_id, c.name, c.psa_provider, c.psa_company_id, c.doc_provider,
       c.doc_organization_id, c.version, c.created_at, c.updated_at, c.updated_by,
       (SELECT a.policy_id FROM policy_service.assignments a
         WHERE a.customer_id = c.id AND a.account_type = 'end_user') AS end_user_policy,
       (SELECT a.policy_id FROM policy_service.assignments a
         WHERE a.customer_id = c.id AND a.account_type = 'administrator') AS administrator_policy
FROM policy_service.customers c
"""


def _policy(row: asyncpg.Record) -> PolicyState:
    return PolicyState.model_validate(
        {
            "id": row["id"],
            "partner_id": row["partner_id"],
            "account_type": row["account_type"],
            "name": row["name"],
            "description": row["description"],
            "is_default": row["is_default"],
            "customer_ids": list(row["customer_ids"]),
            "options": json.loads(row["options"]),
            "version": row["version"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "changed_by": row["updated_by"],
        }
    )


def _customer(row: asyncpg.Record) -> CustomerState:
    psa = (
        PsaMapping(provider=row["psa_provider"], company_id=row["psa_company_id"])
        if row["psa_provider"]
        else None
    )
    documentation = (
        DocumentationMapping(
            provider=row["doc_provider"], organization_id=row["doc_organization_id"]
        )
        if row["doc_provider"]
        else None
    )
    return CustomerState(
        id=row["id"],
        partner_id=row["partner_id"],
        name=row["name"],
        psa=psa,
        documentation=documentation,
        policy_ids=PolicyAssignment(
            end_user=row["end_user_policy"], administrator=row["administrator_policy"]
        ),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        changed_by=row["updated_by"],
    )


def _integration(row: asyncpg.Record) -> IntegrationRecord:
    return IntegrationRecord(
        partner_id=row["partner_id"],
        provider=Provider(row["provider"]),
        base_url=row["base_url"],
        settings=json.loads(row["settings"]),
        enabled=row["enabled"],
        credential_fields=tuple(row["credential_fields"]),
        credentials_ciphertext=row["credentials_ciphertext"],
        version=row["version"],
        status_state=row["status_state"],
        status_detail=row["status_detail"],
        status_checked_at=row["status_checked_at"],
        updated_at=row["updated_at"],
    )


def _options_json(options: EndUserOptions | AdministratorOptions) -> str:
    return options.model_dump_json()


_PARTNER_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 42))"
_LITERAL_SAFE = re.compile(r"[A-Za-z0-9._:-]+")


class Repository:
    """Reads and writes of one unit of work."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def begin_locked(self, partner_id: str) -> None:
        """Open a transaction holding the partner's write lock.

        The writes of one partner are serialised (other partners run in
        parallel): policy writes touch several aggregates at once (a default
        moves, customers move between policies), and one lock per partner makes
        each change see the previous one whole, with no deadlocks. ``BEGIN`` and
        the lock go in one round trip (the simple query protocol takes no
        parameters, so the key is a literal: partner ids are ``[A-Za-z0-9._-]``,
        checked here; any other text takes two round trips with a parameter).
        Every later statement of the transaction sees what the lock's previous
        holder committed (read committed: a snapshot per statement).
        """
        key = f"partner:{partner_id}"
        if _LITERAL_SAFE.fullmatch(key):
            await self.conn.execute("BEGIN; " + _PARTNER_LOCK % f"'{key}'")
            return
        await self.conn.execute("BEGIN")
        await self.conn.execute(_PARTNER_LOCK % "$1", key)

    async def commit(self) -> None:
        """Commit the transaction :meth:`begin_locked` opened; raise if it had failed.

        PostgreSQL answers ``COMMIT`` on a failed transaction by rolling it back
        (status ``ROLLBACK``, no error): that must not pass for a commit.
        """
        status = await self.conn.execute("COMMIT")
        if status != "COMMIT":
            raise asyncpg.InFailedSQLTransactionError(f"the transaction ended with {status}")

    # -- policies ----------------------------------------------------------

    async def policies(
        self, partner_id: str, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, PolicyState]:
        rows = await self.conn.fetch(
            _POLICY_SELECT + " WHERE p.partner_id = $1 AND p.id = ANY($2::uuid[])",
            partner_id,
            list(ids),
        )
        return {row["id"]: _policy(row) for row in rows}

    async def effective_policies(
        self, partner_id: str, customer_id: uuid.UUID
    ) -> dict[AccountType, PolicyState] | None:
        """The policies assigned to the customer, by account type, in one statement;
        None when the partner has no such customer."""
        rows = await self.conn.fetch(
            "WITH c AS (SELECT c.id FROM policy_service.customers c"
            "           WHERE c.partner_id = $1 AND c.id = $2)"
            " SELECT EXISTS (SELECT 1 FROM c) AS customer_found, p.*"
            " FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
            + _POLICY_SELECT
            + " WHERE p.partner_id = $1 AND p.id IN (SELECT a.policy_id"
            "   FROM policy_service.assignments a JOIN c ON a.customer_id = c.id)"
            ") AS p ON true",
            partner_id,
            customer_id,
        )
        if not rows or not rows[0]["customer_found"]:
            return None
        found = [_policy(row) for row in rows if row["id"] is not None]
        return {policy.account_type: policy for policy in found}

    async def policy(self, partner_id: str, policy_id: uuid.UUID) -> PolicyState | None:
        return (await self.policies(partner_id, [policy_id])).get(policy_id)

    async def policy_and_now(
        self, partner_id: str, policy_id: uuid.UUID
    ) -> tuple[PolicyState | None, datetime]:
        """The policy (None if the partner has none such) and the transaction's
        ``now()``, in one round trip: the time every change of it is stamped with."""
        row = await self.conn.fetchrow(  # always one row: the lateral join keeps it
            "SELECT now() AS transaction_time, s.* FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
            + _POLICY_SELECT
            + " WHERE p.partner_id = $1 AND p.id = $2) AS s ON true",
            partner_id,
            policy_id,
        )
        assert row is not None
        return (_policy(row) if row["id"] is not None else None), row["transaction_time"]

    async def list_policies(
        self,
        partner_id: str,
        account_type: AccountType | None,
        after: Cursor | None,
        limit: int,
    ) -> list[PolicyState]:
        rows = await self.conn.fetch(
            _POLICY_SELECT
            + """ WHERE p.partner_id = $1
                  AND ($2::text IS NULL OR p.account_type = $2)
                  AND ($3::timestamptz IS NULL OR (p.created_at, p.id) > ($3, $4::uuid))
                ORDER BY p.created_at, p.id LIMIT $5""",
            partner_id,
            account_type.value if account_type else None,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [_policy(row) for row in rows]

    async def default_policy(self, partner_id: str, account_type: AccountType) -> uuid.UUID | None:
        value: uuid.UUID | None = await self.conn.fetchval(
            "SELECT id FROM policy_service.policies"
            " WHERE partner_id = $1 AND account_type = $2 AND is_default",
            partner_id,
            account_type.value,
        )
        return value

    async def insert_policy(
        self,
        *,
        policy_id: uuid.UUID,
        partner_id: str,
        account_type: AccountType,
        name: str,
        description: str,
        options: EndUserOptions | AdministratorOptions,
        actor: str,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO policy_service.policies
               (id, partner_id, account_type, name, description, is_default, options, version,
                created_by, updated_by)
               VALUES ($1, $2, $3, $4, $5, false, $6::jsonb, 1, $7, $7)""",
            policy_id,
            partner_id,
            account_type.value,
            name,
            description,
            _options_json(options),
            actor,
        )

    async def update_policy(self, change: PolicyFields) -> None:
        """The new name, description and options, recorded as a change (version + 1,
        who and when) in the same statement (see :meth:`bump_policies`).

        Raises :class:`ConcurrentChange` if the policy is no longer at the
        version the change was made from.
        """
        status = await self.conn.execute(_UPDATE_FIELDS, *change.parameters())
        if status != "UPDATE 1":
            raise change.stale()

    async def set_default(
        self, partner_id: str, account_type: AccountType, policy_id: uuid.UUID | None
    ) -> list[uuid.UUID]:
        """Make ``policy_id`` the only default of its type (None: no default).

        Returns the policies whose flag changed. The old default is cleared
        first, so the partial unique index never sees two.
        """
        cleared = await self.conn.fetch(
            """UPDATE policy_service.policies SET is_default = false
               WHERE partner_id = $1 AND account_type = $2 AND is_default
                 AND id IS DISTINCT FROM $3 RETURNING id""",
            partner_id,
            account_type.value,
            policy_id,
        )
        changed = [r["id"] for r in cleared]
        if policy_id is not None:
            made = await self.conn.fetchval(
                "UPDATE policy_service.policies SET is_default = true"
                " WHERE id = $1 AND NOT is_default RETURNING id",
                policy_id,
            )
            if made is not None:
                changed.append(made)
        return changed

    async def unset_default(self, policy_id: uuid.UUID) -> bool:
        done = await self.conn.fetchval(
            "UPDATE policy_service.policies SET is_default = false"
            " WHERE id = $1 AND is_default RETURNING id",
            policy_id,
        )
        return done is not None

    async def delete_policy(self, policy_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM policy_service.policies WHERE id = $1", policy_id)

    async def bump_policies(self, ids: Sequence[uuid.UUID], actor: str) -> None:
        """Record a change to each policy: version + 1, who and when."""
        await self.conn.execute(
            """UPDATE policy_service.policies SET version = version + 1, updated_at = now(),
               updated_by = $2 WHERE id = ANY($1::uuid[])""",
            list(ids),
            actor,
        )

    # -- assignments -------------------------------------------------------

    async def assign(
        self,
        partner_id: str,
        account_type: AccountType,
        policy_id: uuid.UUID,
        customer_ids: Sequence[uuid.UUID],
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Put ``customer_ids`` on ``policy_id``, moving them off any other policy.

        Returns (customers whose assignment changed, policies they left).
        """
        if not customer_ids:
            return [], []
        before = await self.conn.fetch(
            """SELECT customer_id, policy_id FROM policy_service.assignments
               WHERE account_type = $1 AND customer_id = ANY($2::uuid[])""",
            account_type.value,
            list(customer_ids),
        )
        previous = {r["customer_id"]: r["policy_id"] for r in before}
        changed = [c for c in customer_ids if previous.get(c) != policy_id]
        left = sorted({p for c, p in previous.items() if p != policy_id})
        await self.conn.execute(
            """INSERT INTO policy_service.assignments
                   (customer_id, account_type, policy_id, partner_id)
               SELECT c, $2, $3, $4 FROM unnest($1::uuid[]) AS c
               ON CONFLICT (customer_id, account_type) DO UPDATE SET policy_id = EXCLUDED.policy_id
               WHERE assignments.policy_id <> EXCLUDED.policy_id""",
            changed,
            account_type.value,
            policy_id,
            partner_id,
        )
        return changed, left

    async def unassign_except(
        self, policy_id: uuid.UUID, keep: Sequence[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Take every customer but ``keep`` off ``policy_id``; return those removed."""
        rows = await self.conn.fetch(
            """DELETE FROM policy_service.assignments
               WHERE policy_id = $1 AND NOT (customer_id = ANY($2::uuid[]))
               RETURNING customer_id""",
            policy_id,
            list(keep),
        )
        return [r["customer_id"] for r in rows]

    # -- customers ---------------------------------------------------------

    async def customers(
        self, partner_id: str, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, CustomerState]:
        rows = await self.conn.fetch(
            _CUSTOMER_SELECT + " WHERE c.partner_id = $1 AND c.id = ANY($2::uuid[])",
            partner_id,
            list(ids),
        )
        return {row["id"]: _customer(row) for row in rows}

    async def customer(self, partner_id: str, customer_id: uuid.UUID) -> CustomerState | None:
        return (await self.customers(partner_id, [customer_id])).get(customer_id)

    async def existing_customers(self, partner_id: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT id FROM policy_service.customers"
            " WHERE partner_id = $1 AND id = ANY($2::uuid[])",
            partner_id,
            list(ids),
        )
        return {r["id"] for r in rows}

    async def customer_id_taken(self, customer_id: uuid.UUID) -> bool:
        """Whether any partner has a customer with this id (ids are global)."""
        found = await self.conn.fetchval(
            "SELECT 1 FROM policy_service.customers WHERE id = $1", customer_id
        )
        return found is not None

    async def list_customers(
        self, partner_id: str, after: Cursor | None, limit: int
    ) -> list[CustomerState]:
        rows = await self.conn.fetch(
            _CUSTOMER_SELECT
            + """ WHERE c.partner_id = $1
                  AND ($2::timestamptz IS NULL OR (c.created_at, c.id) > ($2, $3::uuid))
                ORDER BY c.created_at, c.id LIMIT $4""",
            partner_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [_customer(row) for row in rows]

    async def insert_customer(
        self,
        *,
        customer_id: uuid.UUID,
        partner_id: str,
        name: str,
        psa: PsaMapping | None,
        documentation: DocumentationMapping | None,
        actor: str,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO policy_service.customers
               (id, partner_id, name, psa_provider, psa_company_id, doc_provider,
                doc_organization_id, version, created_by, updated_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7,
                       COALESCE((SELECT t.version FROM policy_service.customer_tombstones t
                                 WHERE t.id = $1), 0) + 1,
                       $8, $8)""",
            customer_id,
            partner_id,
            name,
            psa.provider.value if psa else None,
            psa.company_id if psa else None,
            documentation.provider.value if documentation else None,
            documentation.organization_id if documentation else None,
            actor,
        )
        # The live row carries the sequence on from here.
        await self.conn.execute(
            "DELETE FROM policy_service.customer_tombstones WHERE id = $1", customer_id
        )

    async def update_customer(
        self,
        customer_id: uuid.UUID,
        *,
        name: str,
        psa: PsaMapping | None,
        documentation: DocumentationMapping | None,
    ) -> None:
        await self.conn.execute(
            """UPDATE policy_service.customers SET name = $2, psa_provider = $3,
               psa_company_id = $4, doc_provider = $5, doc_organization_id = $6 WHERE id = $1""",
            customer_id,
            name,
            psa.provider.value if psa else None,
            psa.company_id if psa else None,
            documentation.provider.value if documentation else None,
            documentation.organization_id if documentation else None,
        )

    async def delete_customer(self, customer_id: uuid.UUID) -> list[uuid.UUID]:
        """Remove a customer, leaving a tombstone with the removal's version (the
        current one + 1); return the policies it was assigned to."""
        rows = await self.conn.fetch(
            "SELECT policy_id FROM policy_service.assignments WHERE customer_id = $1",
            customer_id,
        )
        await self.conn.execute(
            """WITH gone AS (
                   DELETE FROM policy_service.customers WHERE id = $1
                   RETURNING id, partner_id, version)
               INSERT INTO policy_service.customer_tombstones (id, partner_id, version)
               SELECT id, partner_id, version + 1 FROM gone
               ON CONFLICT (id) DO UPDATE SET partner_id = EXCLUDED.partner_id,
                   version = EXCLUDED.version, removed_at = now()""",
            customer_id,
        )
        return [r["policy_id"] for r in rows]

    async def bump_customers(self, ids: Sequence[uuid.UUID], actor: str) -> None:
        await self.conn.execute(
            """UPDATE policy_service.customers SET version = version + 1, updated_at = now(),
               updated_by = $2 WHERE id = ANY($1::uuid[])""",
            list(ids),
            actor,
        )

    async def customers_on_psa_company(self, partner_id: str, psa: PsaMapping) -> int:
        count: int = await self.conn.fetchval(
            """SELECT count(*) FROM policy_service.customers
               WHERE partner_id = $1 AND psa_provider = $2 AND psa_company_id = $3""",
            partner_id,
            psa.provider.value,
            psa.company_id,
        )
        return count

    # -- audit and outbox --------------------------------------------------

    async def record_changes(
        self,
        audit: Sequence[tuple[str, str, str, str, uuid.UUID, int]],
        outbox: Sequence[tuple[str, str, bytes, dict[str, Any]]],
        change: PolicyFields | None = None,
    ) -> None:
        """The audit rows and the outbox events of one write, and a wake-up for the relay.

        ``audit``: (partner, actor, action, entity type, entity id, version) per
        change; ``outbox``: (topic, key, value, headers) per event, kept in the
        order given. One statement (three were one round trip each); the relay
        is notified once, only when an event was appended. With ``change``, the
        policy's fields are updated in that statement too (its event, built from
        the state it leaves, is among ``outbox``): a ``PATCH`` of a policy's
        fields is one statement between the lock and the commit.
        """
        if not audit and not outbox and change is None:
            return
        recorded = (
            *([row[i] for row in audit] for i in range(6)),
            [r[0] for r in outbox],
            [r[1] for r in outbox],
            [r[2] for r in outbox],
            [json.dumps(r[3]) for r in outbox],
        )
        # ``notified`` is a plain query: it runs only where the statement reads it.
        if change is None:
            await self.conn.execute(
                "WITH " + _record(0) + " SELECT (SELECT count(*) FROM notified)", *recorded
            )
            return
        row = await self.conn.fetchrow(
            "WITH changed AS ("
            + _UPDATE_FIELDS
            + " RETURNING 1), "
            + _record(7)
            + " SELECT (SELECT count(*) FROM changed) AS changed,"
            " (SELECT count(*) FROM notified) AS notified",
            *change.parameters(),
            *recorded,
        )
        if row is None or row["changed"] != 1:
            raise change.stale()

    # -- integrations ------------------------------------------------------

    async def integrations(
        self, partner_id: str, provider: Provider | None = None
    ) -> list[IntegrationRecord]:
        """The partner's configured integrations (one, with ``provider``), by provider."""
        rows = await self.conn.fetch(
            """SELECT * FROM policy_service.integrations
               WHERE partner_id = $1 AND NOT removed AND ($2::text IS NULL OR provider = $2)
               ORDER BY provider""",
            partner_id,
            provider.value if provider else None,
        )
        return [_integration(row) for row in rows]

    async def integration_version(self, partner_id: str, provider: Provider) -> tuple[int, bool]:
        """(version, removed) of the row, (0, True) when there never was one."""
        row = await self.conn.fetchrow(
            "SELECT version, removed FROM policy_service.integrations"
            " WHERE partner_id = $1 AND provider = $2 FOR UPDATE",
            partner_id,
            provider.value,
        )
        return (row["version"], row["removed"]) if row else (0, True)

    async def put_integration(
        self,
        *,
        partner_id: str,
        provider: Provider,
        base_url: str,
        settings: dict[str, Any],
        enabled: bool,
        credentials: tuple[str, tuple[str, ...]] | None,
        actor: str,
    ) -> None:
        """Configure or replace; ``credentials`` (ciphertext, field names) None keeps the
        stored ones (the integration must then exist). A new configuration has not been
        tried yet: its status starts ``unknown`` again."""
        settings_json = json.dumps(settings)
        if credentials is None:
            await self.conn.execute(
                """UPDATE policy_service.integrations SET base_url = $3, settings = $4::jsonb,
                       enabled = $5, version = version + 1, updated_at = now(), updated_by = $6,
                       status_state = 'unknown', status_detail = NULL, status_checked_at = NULL
                   WHERE partner_id = $1 AND provider = $2 AND NOT removed""",
                partner_id,
                provider.value,
                base_url,
                settings_json,
                enabled,
                actor,
            )
            return
        ciphertext, fields = credentials
        await self.conn.execute(
            """INSERT INTO policy_service.integrations AS i
                   (partner_id, provider, base_url, settings, enabled, credentials_ciphertext,
                    credential_fields, version, updated_by)
               VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::text[], 1, $8)
               ON CONFLICT (partner_id, provider) DO UPDATE SET
                   base_url = EXCLUDED.base_url, settings = EXCLUDED.settings,
                   enabled = EXCLUDED.enabled,
                   credentials_ciphertext = EXCLUDED.credentials_ciphertext,
                   credential_fields = EXCLUDED.credential_fields,
                   version = i.version + 1, removed = false, updated_at = now(),
                   updated_by = EXCLUDED.updated_by,
                   status_state = 'unknown', status_detail = NULL, status_checked_at = NULL""",
            partner_id,
            provider.value,
            base_url,
            settings_json,
            enabled,
            ciphertext,
            list(fields),
            actor,
        )

    async def remove_integration(
        self, partner_id: str, provider: Provider, actor: str
    ) -> int | None:
        """Mark removed and forget the ciphertext; the removal's version (None: none there)."""
        version: int | None = await self.conn.fetchval(
            """UPDATE policy_service.integrations SET removed = true,
                   credentials_ciphertext = NULL, version = version + 1, updated_at = now(),
                   updated_by = $3, status_state = 'unknown', status_detail = NULL,
                   status_checked_at = NULL
               WHERE partner_id = $1 AND provider = $2 AND NOT removed RETURNING version""",
            partner_id,
            provider.value,
            actor,
        )
        return version

    async def report_integration_status(
        self, reports: Sequence[tuple[str, str, str, str | None, datetime]]
    ) -> int:
        """(partner, provider, state, detail, checked_at) each: newer reports win."""
        if not reports:
            return 0
        result = await self.conn.execute(
            """UPDATE policy_service.integrations AS i
               SET status_state = r.state, status_detail = r.detail,
                   status_checked_at = r.checked_at
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                    AS r(partner_id, provider, state, detail, checked_at)
               WHERE i.partner_id = r.partner_id AND i.provider = r.provider AND NOT i.removed
                 AND (i.status_checked_at IS NULL OR i.status_checked_at < r.checked_at)
                 AND r.checked_at >= i.updated_at""",
            [r[0] for r in reports],
            [r[1] for r in reports],
            [r[2] for r in reports],
            [r[3] for r in reports],
            [r[4] for r in reports],
        )
        return int(result.split()[-1])
