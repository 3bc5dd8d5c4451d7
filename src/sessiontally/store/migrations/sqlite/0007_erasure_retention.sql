-- Erasure of a user and retention (issue 20; docs/architecture.md, "Erasing a user" and
-- "Retention").

-- The tracked segments a recorded session or a track event counted toward when it was
-- recorded (space-separated keys, as derived_sessions.segment_keys), so that erasure
-- takes it off exactly those. NULL: recorded before this migration (erasure then matches
-- the user's attributes at that moment: its one approximation).
ALTER TABLE sessions ADD COLUMN segment_keys TEXT;
ALTER TABLE events ADD COLUMN segment_keys TEXT;

-- A person's raw rows, found without a scan: recorded sessions by external id, events by
-- person (anonymousId, else userId) and by userId (the anonymous persons it links).
CREATE INDEX sessions_by_external_id ON sessions (workspace_id, external_id);
CREATE INDEX events_by_person ON events (workspace_id, person);
CREATE INDEX events_by_user_id ON events (workspace_id, user_id) WHERE user_id IS NOT NULL;

-- Days after which raw rows are deleted (store.expire_raw_rows); NULL keeps them forever.
ALTER TABLE workspaces ADD COLUMN retention_days INTEGER;
