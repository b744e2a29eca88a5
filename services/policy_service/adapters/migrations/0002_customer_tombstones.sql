-- Versions never go back (docs/contract.md §4): a removed customer leaves a
-- tombstone with the removal's version, and a customer added again with the
-- same id continues from it. Without it the re-added customer would restart
-- at version 1, below every consumer's tombstone, and be ignored for good.
CREATE TABLE customer_tombstones (
    id          uuid PRIMARY KEY,
    partner_id  text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    removed_at  timestamptz NOT NULL DEFAULT now()
);
