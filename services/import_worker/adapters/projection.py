"""The worker's own view of customers and policies, rebuilt from their events.

Writes are version-guarded upserts: a lower version never overwrites a
higher one, so events may arrive twice or out of order. Reads serve the hot
path: every customer of a batch, with its effective policies and whether its
PSA company is shared, in one query.
"""

import json
import uuid
from collections.abc import Sequence

import asyncpg

from schemas.customer import CustomerRemoved, CustomerState
from schemas.enums import AccountType
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.policy import PolicyDeleted, PolicyState
from services.decision import CustomerView, EffectivePolicy
from services.import_worker.service_layer.ports import CustomerRecord

_UPSERT_CUSTOMER = """
INSERT INTO import_worker.customers AS c
    (id, partner_id, psa_provider, psa_company_id, doc_provider, doc_organization_id,
     end_user_policy, administrator_policy, version, removed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    partner_id = EXCLUDED.partner_id, psa_provider = EXCLUDED.psa_provider,
    psa_company_id = EXCLUDED.psa_company_id, doc_provider = EXCLUDED.doc_provider,
    doc_organization_id = EXCLUDED.doc_organization_id,
    end_user_policy = EXCLUDED.end_user_policy,
    administrator_policy = EXCLUDED.administrator_policy,
    version = EXCLUDED.version, removed = EXCLUDED.removed, projected_at = now()
WHERE c.version < EXCLUDED.version
RETURNING id
"""

_UPSERT_POLICY = """
INSERT INTO import_worker.policies AS p (id, partner_id, account_type, options, version, deleted)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT (id) DO UPDATE SET
    partner_id = EXCLUDED.partner_id, account_type = EXCLUDED.account_type,
    options = COALESCE(EXCLUDED.options, p.options), version = EXCLUDED.version,
    deleted = EXCLUDED.deleted, projected_at = now()
WHERE p.version < EXCLUDED.version
RETURNING id
"""

_LOOKUP = """
SELECT c.id, c.partner_id, c.psa_provider, c.psa_company_id, c.doc_provider,
       c.doc_organization_id, c.end_user_policy, c.administrator_policy,
       CASE WHEN c.psa_provider IS NULL THEN 0 ELSE (
           SELECT count(*) FROM import_worker.customers s
           WHERE s.partner_id = c.partner_id AND s.psa_provider = c.psa_provider
             AND s.psa_company_id = c.psa_company_id AND NOT s.removed) END AS psa_sharers,
       pe.version AS eu_version, pe.options AS eu_options, pe.deleted AS eu_deleted,
       pe.account_type AS eu_type,
       pa.version AS ad_version, pa.options AS ad_options, pa.deleted AS ad_deleted,
       pa.account_type AS ad_type
FROM import_worker.customers c
LEFT JOIN import_worker.policies pe ON pe.id = c.end_user_policy
LEFT JOIN import_worker.policies pa ON pa.id = c.administrator_policy
WHERE c.id = ANY($1::uuid[]) AND NOT c.removed
"""


class Projection:
    """Version-guarded writes and batch reads of the worker's projection tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def apply_customer(self, state: CustomerState | CustomerRemoved) -> bool:
        """Apply one customer event; False when an equal or newer version is there."""
        if isinstance(state, CustomerRemoved):
            args: tuple[object, ...] = (
                state.id,
                state.partner_id,
                None,
                None,
                None,
                None,
                None,
                None,
                state.version,
                True,
            )
        else:
            args = (
                state.id,
                state.partner_id,
                state.psa.provider.value if state.psa else None,
                state.psa.company_id if state.psa else None,
                state.documentation.provider.value if state.documentation else None,
                state.documentation.organization_id if state.documentation else None,
                state.policy_ids.end_user,
                state.policy_ids.administrator,
                state.version,
                False,
            )
        return await self.pool.fetchval(_UPSERT_CUSTOMER, *args) is not None

    async def apply_policy(self, state: PolicyState | PolicyDeleted) -> bool:
        """Apply one policy event; False when an equal or newer version is there."""
        if isinstance(state, PolicyDeleted):
            args: tuple[object, ...] = (
                state.id,
                state.partner_id,
                state.account_type.value,
                None,
                state.version,
                True,
            )
        else:
            args = (
                state.id,
                state.partner_id,
                state.account_type.value,
                state.options.model_dump_json(),
                state.version,
                False,
            )
        return await self.pool.fetchval(_UPSERT_POLICY, *args) is not None

    async def lookup(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CustomerRecord]:
        if not customer_ids:
            return {}
        rows = await self.pool.fetch(_LOOKUP, list(customer_ids))
        return {row["id"]: _record(row) for row in rows}


def _record(row: asyncpg.Record) -> CustomerRecord:
    view = CustomerView(
        id=row["id"],
        partner_id=row["partner_id"],
        psa=PsaMapping(provider=row["psa_provider"], company_id=row["psa_company_id"])
        if row["psa_provider"]
        else None,
        documentation=DocumentationMapping(
            provider=row["doc_provider"], organization_id=row["doc_organization_id"]
        )
        if row["doc_provider"]
        else None,
        psa_company_shared=row["psa_sharers"] > 1,
    )
    policies: dict[AccountType, EffectivePolicy | None] = {}
    pending: set[AccountType] = set()
    for account_type, prefix, column in (
        (AccountType.END_USER, "eu", "end_user_policy"),
        (AccountType.ADMINISTRATOR, "ad", "administrator_policy"),
    ):
        policy_id = row[column]
        if policy_id is None or row[f"{prefix}_deleted"]:
            policies[account_type] = None  # unassigned, or its policy is gone
        elif row[f"{prefix}_version"] is None or row[f"{prefix}_type"] != account_type.value:
            pending.add(account_type)  # assigned to a policy we have not seen yet
            policies[account_type] = None
        else:
            policies[account_type] = EffectivePolicy(
                id=policy_id,
                version=row[f"{prefix}_version"],
                account_type=account_type,
                options=json.loads(row[f"{prefix}_options"]),
            )
    return CustomerRecord(view=view, policies=policies, pending=frozenset(pending))
