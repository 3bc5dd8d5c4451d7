-- Users (attributes set through POST /users/track) and segments (named filters).

CREATE TABLE users (
    workspace_id BIGINT NOT NULL,
    external_id  TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, external_id)
);

CREATE TABLE segments (
    workspace_id       BIGINT NOT NULL,
    segment_key        INTEGER NOT NULL,
    segment_id         TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    tags               TEXT NOT NULL DEFAULT '[]',
    filter             TEXT NOT NULL,
    analytics_enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    tracking_since     BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, segment_key),
    UNIQUE (workspace_id, segment_id)
);
