-- The handlers' tables (schema handlers). The policy service and the worker
-- never read them, nor the handlers theirs.

-- Projection of integration.events: version-guarded; a removal keeps its
-- version (and drops the ciphertext) so a late, older event cannot resurrect it.
CREATE TABLE integrations (
    partner_id              text NOT NULL,
    provider                text NOT NULL,
    base_url                text NOT NULL DEFAULT '',
    settings                jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled                 boolean NOT NULL DEFAULT false,
    credentials_ciphertext  text,
    version                 integer NOT NULL,
    removed                 boolean NOT NULL DEFAULT false,
    projected_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, provider)
);

-- One row per command id: the intent is written before the vendor is called
-- (state 'started', attempts counted), the result once it is sent ('done').
-- A redelivered command is answered from here, never executed again.
CREATE TABLE inbox (
    command_id    uuid PRIMARY KEY,
    command_type  text NOT NULL,
    account_key   text NOT NULL,
    partner_id    text NOT NULL,
    provider      text,
    state         text NOT NULL CHECK (state IN ('started', 'done')),
    attempts      integer NOT NULL DEFAULT 0,
    result_type   text,
    result_id     uuid,
    result        jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_account ON inbox (account_key);

-- Where each account's password lives in IT Glue / Hudu (entry_id NULL while
-- deferred: created with the first known password), and the command that linked it.
CREATE TABLE doc_links (
    account_key      text PRIMARY KEY,
    command_id       uuid NOT NULL,
    partner_id       text NOT NULL,
    provider         text NOT NULL,
    organization_id  text NOT NULL,
    entry_id         text,
    url              text,
    command          jsonb NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The PSA contact each account was linked to (its email serves the welcome email).
CREATE TABLE psa_links (
    account_key  text PRIMARY KEY,
    command_id   uuid NOT NULL,
    partner_id   text NOT NULL,
    provider     text NOT NULL,
    contact_id   text NOT NULL,
    email        text,
    phone        text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The last password change seen per account, still sealed as it came
-- (AES-256-GCM under SECRETS_KEY, the account key as associated data): an
-- entry deferred, or linked after the change, is created with it.
CREATE TABLE latest_passwords (
    account_key  text PRIMARY KEY,
    change_id    text NOT NULL,
    changed_at   timestamptz NOT NULL,
    ciphertext   text NOT NULL
);

-- One row per (password change, target): a change is applied to each target once.
CREATE TABLE password_changes (
    change_id    text NOT NULL,
    target       text NOT NULL,
    account_key  text NOT NULL,
    done_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (change_id, target)
);

-- Vendor limits shared by every handler process (adapters/pacing.py).
CREATE TABLE pacing_slots (
    integration  text NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX pacing_slots_window ON pacing_slots (integration, at);
CREATE TABLE pacing_pauses (
    integration  text PRIMARY KEY,
    until        timestamptz NOT NULL
);
