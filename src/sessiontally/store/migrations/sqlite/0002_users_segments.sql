-- Users (attributes set through POST /users/track) and segments (named filters).

CREATE TABLE users (
    workspace_id INTEGER NOT NULL,
    external_id  TEXT NOT NULL,
    attributes   TEXT NOT NULL,             -- JSON object of typed values (attributes.py)
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, external_id)
) WITHOUT ROWID;

CREATE TABLE segments (
    workspace_id       INTEGER NOT NULL,
    segment_key        INTEGER NOT NULL,    -- compact id used in the rollup (>= 1)
    segment_id         TEXT NOT NULL,       -- public identifier (UUID)
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    tags               TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    filter             TEXT NOT NULL,       -- canonical JSON of the filter (segments.py)
    analytics_enabled  INTEGER NOT NULL DEFAULT 0,
    tracking_since     INTEGER,             -- when analytics tracking was last turned on
    created_at         INTEGER NOT NULL,    -- microseconds since the epoch
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, segment_key),
    UNIQUE (workspace_id, segment_id)
) WITHOUT ROWID;
