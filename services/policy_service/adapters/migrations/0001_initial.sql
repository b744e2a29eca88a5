-- Policy service tables. The constraints enforce the contract's rules, so a
-- bug in Python cannot leave two defaults or two policies per customer type.

CREATE TABLE customers (
    id                   uuid PRIMARY KEY,
    partner_id           text NOT NULL,
    name                 text NOT NULL,
    psa_provider         text CHECK (psa_provider IN ('connectwise', 'autotask', 'halo')),
    psa_company_id       text,
    doc_provider         text CHECK (doc_provider IN ('itglue', 'hudu')),
    doc_organization_id  text,
    version              integer NOT NULL CHECK (version >= 1),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    created_by           text NOT NULL,
    updated_by           text NOT NULL,
    CHECK ((psa_provider IS NULL) = (psa_company_id IS NULL)),
    CHECK ((doc_provider IS NULL) = (doc_organization_id IS NULL)),
    UNIQUE (id, partner_id)
);
CREATE INDEX customers_partner_order ON customers (partner_id, created_at, id);
CREATE INDEX customers_psa_company ON customers (partner_id, psa_provider, psa_company_id)
    WHERE psa_provider IS NOT NULL;

CREATE TABLE policies (
    id            uuid PRIMARY KEY,
    partner_id    text NOT NULL,
    account_type  text NOT NULL CHECK (account_type IN ('end_user', 'administrator')),
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    is_default    boolean NOT NULL DEFAULT false,
    options       jsonb NOT NULL,
    version       integer NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    updated_by    text NOT NULL,
    UNIQUE (id, account_type, partner_id)
);
CREATE UNIQUE INDEX policies_name_per_type ON policies (partner_id, account_type, lower(name));
CREATE UNIQUE INDEX policies_one_default ON policies (partner_id, account_type) WHERE is_default;
CREATE INDEX policies_partner_order ON policies (partner_id, created_at, id);

-- One policy per (customer, account type); both ends belong to the same partner.
CREATE TABLE assignments (
    customer_id   uuid NOT NULL,
    account_type  text NOT NULL,
    policy_id     uuid NOT NULL,
    partner_id    text NOT NULL,
    PRIMARY KEY (customer_id, account_type),
    FOREIGN KEY (customer_id, partner_id) REFERENCES customers (id, partner_id) ON DELETE CASCADE,
    FOREIGN KEY (policy_id, account_type, partner_id)
        REFERENCES policies (id, account_type, partner_id) ON DELETE CASCADE
);
CREATE INDEX assignments_policy ON assignments (policy_id);

-- Who changed what, kept after the aggregate is gone.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    partner_id   text NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid NOT NULL,
    version      integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity ON audit_log (entity_id, id);

-- Transactional outbox. `txid` is the writing transaction's id: the relay
-- reads only rows below the oldest running transaction (pg_snapshot_xmin), in
-- (txid, id) order, so a row whose transaction commits late is never skipped.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    txid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    topic         text NOT NULL,
    key           text NOT NULL,
    value         bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (txid, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
