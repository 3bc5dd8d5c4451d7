-- Dashboard members (CONTRACT section 13): people who sign in to one workspace's
-- dashboard with an e-mail and a password, their sessions, and sign-in throttling.

-- One sign-in form for every workspace, so an e-mail is unique across all of them.
-- AUTOINCREMENT: a removed member's id is never given to another.
CREATE TABLE members (
    member_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id        INTEGER NOT NULL REFERENCES workspaces (workspace_id),
    email               TEXT NOT NULL UNIQUE,   -- trimmed, in lower case
    password_hash       TEXT NOT NULL,          -- argon2id PHC string (passwords.py)
    created_at          INTEGER NOT NULL,       -- microseconds since the epoch
    password_changed_at INTEGER NOT NULL,       -- microseconds
    last_sign_in_at     INTEGER                 -- microseconds; NULL: never
);
CREATE INDEX members_by_workspace ON members (workspace_id);

-- Signed-in browsers: the SHA-256 of the session token (the token is never stored).
CREATE TABLE member_sessions (
    workspace_id INTEGER NOT NULL,
    token_hash   BLOB NOT NULL,
    member_id    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,              -- seconds since the epoch
    expires_at   INTEGER NOT NULL,              -- seconds
    PRIMARY KEY (workspace_id, token_hash)
) WITHOUT ROWID;
CREATE INDEX member_sessions_by_member ON member_sessions (workspace_id, member_id);

-- Sign-in attempts per throttle key ("email:<sha256>", "ip:<address>") and window.
CREATE TABLE sign_in_attempts (
    throttle_key TEXT NOT NULL,
    window_start INTEGER NOT NULL,              -- seconds since the epoch
    attempts     INTEGER NOT NULL,
    PRIMARY KEY (throttle_key, window_start)
) WITHOUT ROWID;
CREATE INDEX sign_in_attempts_by_window ON sign_in_attempts (window_start);
