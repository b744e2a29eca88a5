-- When the handlers took each account's newest password (their clock, not the change's
-- changed_at): a documentation link compares it with its command's first attempt to
-- find a change that was remembered while the link was being made, and so skipped it.
ALTER TABLE latest_passwords ADD COLUMN remembered_at timestamptz NOT NULL DEFAULT now();
