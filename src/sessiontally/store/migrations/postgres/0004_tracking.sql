-- The tracking API (CONTRACT sections 10 and 11) on PostgreSQL: write keys and settings per app, the
-- events received, and the sessions derived from them (docs/architecture.md).

-- The write key is not a secret (it ships inside web pages); it is stored as it is, so
-- that it can be shown with the app. It begins with "wk_<workspace id>_". Apps made
-- before this migration get theirs from the store right after it (sql.fill_write_keys):
-- one parameterised UPDATE per app, which a distributed table routes to one shard.
ALTER TABLE apps ADD COLUMN write_key TEXT;
ALTER TABLE apps ADD COLUMN session_timeout_s INTEGER NOT NULL DEFAULT 1800;
ALTER TABLE apps ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';  -- space-separated; empty = any
ALTER TABLE apps ADD COLUMN event_limit BIGINT NOT NULL DEFAULT 10000000;  -- messages per UTC hour
CREATE UNIQUE INDEX apps_write_key ON apps (workspace_id, write_key);

-- One row per message recorded: (app, messageId) is the idempotency key.
CREATE TABLE events (
    workspace_id BIGINT NOT NULL,
    app_key      INTEGER NOT NULL,
    message_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    event        TEXT,                      -- track's event, page's or screen's name
    person       TEXT NOT NULL,             -- anonymousId, else userId
    user_id      TEXT,
    occurred_at  BIGINT NOT NULL,          -- microseconds since the epoch
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, message_id)
);

-- One row per derived session: its first and last event time. Keyed by its end, so that
-- the sessions a new event can touch (ending at or after its time minus the timeout) are
-- one range of the key.
CREATE TABLE derived_sessions (
    workspace_id BIGINT NOT NULL,
    app_key      INTEGER NOT NULL,
    person       TEXT NOT NULL,
    ended_at     BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    segment_keys TEXT NOT NULL DEFAULT '',  -- space-separated tracked segment keys it counts toward
    PRIMARY KEY (workspace_id, app_key, person, ended_at)
);

-- Messages taken per app and UTC hour (hour = floor(epoch seconds / 3600)).
CREATE TABLE app_message_counts (
    workspace_id BIGINT NOT NULL,
    app_key      INTEGER NOT NULL,
    hour         BIGINT NOT NULL,
    messages     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, hour)
);
