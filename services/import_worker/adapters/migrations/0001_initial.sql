-- Import worker tables: projections of the policy service's events, and the
-- import ledger. Projections are version-guarded; removals are tombstones
-- that keep their version, so a late, older event cannot resurrect a row.

CREATE TABLE customers (
    id                   uuid PRIMARY KEY,
    partner_id           text NOT NULL,
    psa_provider         text,
    psa_company_id       text,
    doc_provider         text,
    doc_organization_id  text,
    end_user_policy      uuid,
    administrator_policy uuid,
    version              integer NOT NULL,
    removed              boolean NOT NULL DEFAULT false,
    projected_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_psa_company ON customers (partner_id, psa_provider, psa_company_id)
    WHERE psa_provider IS NOT NULL AND NOT removed;

CREATE TABLE policies (
    id            uuid PRIMARY KEY,
    partner_id    text NOT NULL,
    account_type  text NOT NULL,
    options       jsonb,
    version       integer NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    projected_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per imported account: the first decision, written in the same
-- transaction that waits for its commands' acks.
CREATE TABLE ledger (
    account_key     text PRIMARY KEY,
    partner_id      text NOT NULL,
    customer_id     uuid NOT NULL,
    policy_id       uuid NOT NULL,
    policy_version  integer NOT NULL,
    decision_id     uuid NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_customer ON ledger (customer_id);
