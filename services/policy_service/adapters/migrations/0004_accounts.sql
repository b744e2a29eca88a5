-- The accounts read model (docs/contract.md §8): what the import worker decided for
-- each account (import.decisions) and how each of its commands ended
-- (command.results), projected in any order. A result may arrive before its
-- decision: its row waits for the account row.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE accounts (
    key             text PRIMARY KEY,
    partner_id      text NOT NULL,
    customer_id     uuid NOT NULL,
    account_type    text NOT NULL,
    directory       text NOT NULL,
    username        text NOT NULL,
    display_name    text,
    email           text,
    -- username, display name and email, lower case: what `q` searches.
    search          text NOT NULL,
    decision_id     uuid NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('imported', 'no_policy')),
    policy_id       uuid,
    policy_version  integer,
    notes           jsonb NOT NULL DEFAULT '[]'::jsonb,
    command_ids     jsonb NOT NULL DEFAULT '[]'::jsonb,
    decided_at      timestamptz NOT NULL,
    status          text NOT NULL
                        CHECK (status IN ('done', 'pending', 'attention', 'no_policy')),
    projected_at    timestamptz NOT NULL DEFAULT now()
);
-- Newest first, per partner, alone or with one filter; `key` breaks ties (the cursor).
CREATE INDEX accounts_newest ON accounts (partner_id, decided_at DESC, key DESC);
CREATE INDEX accounts_by_customer
    ON accounts (partner_id, customer_id, decided_at DESC, key DESC);
CREATE INDEX accounts_by_status ON accounts (partner_id, status, decided_at DESC, key DESC);
CREATE INDEX accounts_by_customer_status
    ON accounts (partner_id, customer_id, status, decided_at DESC, key DESC);
CREATE INDEX accounts_search ON accounts USING gin (search public.gin_trgm_ops);

-- The latest result of each command. A command with no row here is pending: the
-- decision's command_ids say which commands an account has.
CREATE TABLE account_commands (
    command_id      uuid PRIMARY KEY,
    account_key     text NOT NULL,
    partner_id      text NOT NULL,
    command_type    text NOT NULL,
    status          text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    outcome         text,
    reason          text,
    provider        text,
    refs            jsonb NOT NULL DEFAULT '[]'::jsonb,
    detail          text,
    result_id       uuid NOT NULL,
    finished_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_commands_by_account ON account_commands (account_key);

-- Accounts per status, kept with every change: the counts above the Accounts page
-- read a handful of rows, not a million.
CREATE TABLE account_counts (
    partner_id      text NOT NULL,
    customer_id     uuid NOT NULL,
    account_type    text NOT NULL,
    status          text NOT NULL,
    accounts        bigint NOT NULL,  -- no CHECK: it would see the -1 of a move first
    PRIMARY KEY (partner_id, customer_id, account_type, status)
);
