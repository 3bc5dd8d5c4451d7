-- Keys never reused: the app and segment keys a deleted app or segment had. A new app's
-- or segment's key is one more than the largest live or retired key of its workspace, so
-- no row left behind (a raw row's segment_keys, a count made before) can ever be taken
-- for the new one's.
CREATE TABLE retired_keys (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (workspace_id),
    kind         TEXT NOT NULL,             -- 'app' or 'segment'
    retired_key  INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, retired_key)
) WITHOUT ROWID;
