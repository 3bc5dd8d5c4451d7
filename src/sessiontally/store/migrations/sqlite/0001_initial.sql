-- Workspaces, apps, API keys, raw sessions and the quarter-hour rollup.
-- Every table's primary key begins with the workspace id (see docs/architecture.md).

CREATE TABLE workspaces (
    workspace_id INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    time_zone    TEXT NOT NULL,
    rate_limit   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE apps (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (workspace_id),
    app_key      INTEGER NOT NULL,          -- compact id used in the rollup; 0 means "all apps"
    app_id       TEXT NOT NULL,             -- public identifier (UUID)
    name         TEXT NOT NULL,
    platform     TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, app_key),
    UNIQUE (workspace_id, app_id)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (workspace_id),
    key_id       INTEGER NOT NULL,
    name         TEXT NOT NULL,
    key_hash     BLOB NOT NULL,             -- SHA-256 of the secret; the secret is never stored
    key_prefix   TEXT NOT NULL,             -- first characters, to recognise a key in listings
    permissions  TEXT NOT NULL,             -- space-separated permission names
    allowed_ips  TEXT NOT NULL DEFAULT '',  -- space-separated addresses / CIDRs; empty = any
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    revoked_at   INTEGER,
    PRIMARY KEY (workspace_id, key_id),
    UNIQUE (workspace_id, key_hash)
) WITHOUT ROWID;

-- The raw record: the idempotency key (workspace_id, session_id) and the source for rebuilds.
CREATE TABLE sessions (
    workspace_id INTEGER NOT NULL,
    session_id   TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    app_key      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,          -- microseconds since the Unix epoch (UTC)
    ended_at     INTEGER,
    PRIMARY KEY (workspace_id, session_id)
) WITHOUT ROWID;

-- Session counts per UTC quarter-hour (quarter = floor(started_at / 900 s)).
-- app_key 0 = all apps; segment_key 0 = all users.
CREATE TABLE session_counts (
    workspace_id INTEGER NOT NULL,
    app_key      INTEGER NOT NULL,
    segment_key  INTEGER NOT NULL,
    quarter      INTEGER NOT NULL,
    sessions     INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, app_key, segment_key, quarter)
) WITHOUT ROWID;
