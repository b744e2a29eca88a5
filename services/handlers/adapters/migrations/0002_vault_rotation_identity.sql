-- The vault, password rotation, the identity enrolments and the welcome emails
-- (docs/contract.md §7).

-- One vault entry per account. The secret is sealed (AES-256-GCM) with a data key of
-- its own, and the data key is sealed under SECRETS_KEY (envelope encryption): the
-- key is rotated by re-sealing data keys only (`handlers rewrap-keys`). No API
-- returns a secret.
CREATE TABLE vault_entries (
    account_key        text PRIMARY KEY,
    partner_id         text NOT NULL,
    customer_id        uuid NOT NULL,
    command_id         uuid NOT NULL,
    wrapped_key        text,
    secret_ciphertext  text,
    version            integer NOT NULL DEFAULT 0,
    change_id          text,
    changed_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((wrapped_key IS NULL) = (secret_ciphertext IS NULL))
);

-- What each earlier secret was (for the audit), never the secret itself.
CREATE TABLE vault_history (
    account_key  text NOT NULL,
    version      integer NOT NULL,
    change_id    text NOT NULL,
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL,
    replaced_at  timestamptz,
    PRIMARY KEY (account_key, version)
);

-- Accounts enrolled in rotation: when the next one is due, and the request sent for it.
CREATE TABLE rotations (
    account_key    text PRIMARY KEY,
    partner_id     text NOT NULL,
    customer_id    uuid NOT NULL,
    command_id     uuid NOT NULL,
    interval_days  integer NOT NULL CHECK (interval_days >= 1),
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    next_due       timestamptz NOT NULL,
    requested_at   timestamptz,
    request_id     uuid,
    requests       integer NOT NULL DEFAULT 0
);
CREATE INDEX rotations_due ON rotations (next_due);

-- Self-service reset and Microsoft 365 password sync enrolments.
CREATE TABLE enrolments (
    account_key  text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('self_service_reset', 'm365_password_sync')),
    partner_id   text NOT NULL,
    customer_id  uuid NOT NULL,
    command_id   uuid NOT NULL,
    principal    text,
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_key, kind)
);

-- Welcome emails waiting for an address (the PSA link's) or for the account's other
-- commands to arrive: kept here, not in memory, so a wait of minutes holds neither an
-- offset nor a slot of the consumer, and survives a restart.
CREATE TABLE welcome_waits (
    command_id     uuid PRIMARY KEY,
    account_key    text NOT NULL,
    envelope       jsonb NOT NULL,
    waiting_since  timestamptz NOT NULL DEFAULT now(),
    next_try       timestamptz NOT NULL,
    claimed_until  timestamptz,
    tries          integer NOT NULL DEFAULT 0
);
CREATE INDEX welcome_waits_next ON welcome_waits (next_try);
CREATE INDEX welcome_waits_account ON welcome_waits (account_key);

-- The welcome email of each account (one per account), written in the transaction
-- that holds the account's lock while the SMTP server takes the message.
CREATE TABLE welcome_sent (
    account_key  text PRIMARY KEY,
    command_id   uuid NOT NULL,
    message_id   text NOT NULL,
    sent_at      timestamptz NOT NULL DEFAULT now()
);

-- Who made the last change (the vault's history records it when the entry comes later).
ALTER TABLE latest_passwords ADD COLUMN changed_by text NOT NULL DEFAULT 'agent';
