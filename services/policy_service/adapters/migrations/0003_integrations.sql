-- Each partner's integrations (docs/contract.md §6). Credentials are stored only as
-- AES-256-GCM ciphertext under SECRETS_KEY, with `<partner_id>:<provider>` as
-- associated data: the very bytes integration.events carries. A removed
-- integration keeps its row (removed, no ciphertext) so that configuring it again
-- continues its version sequence: versions never go back.
CREATE TABLE integrations (
    partner_id              text NOT NULL,
    provider                text NOT NULL CHECK (provider IN
                                ('connectwise', 'autotask', 'halo', 'itglue', 'hudu', 'smtp', 'm365')),
    base_url                text NOT NULL,
    settings                jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled                 boolean NOT NULL DEFAULT true,
    credentials_ciphertext  text,
    credential_fields       text[] NOT NULL DEFAULT '{}',
    version                 integer NOT NULL CHECK (version >= 1),
    removed                 boolean NOT NULL DEFAULT false,
    -- As last reported by the handlers through command.results.
    status_state            text NOT NULL DEFAULT 'unknown'
                                CHECK (status_state IN ('unknown', 'ok', 'failing')),
    status_detail           text,
    status_checked_at       timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    updated_by              text NOT NULL,
    PRIMARY KEY (partner_id, provider),
    CHECK (removed OR credentials_ciphertext IS NOT NULL)
);
