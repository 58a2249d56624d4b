-- Users, their credentials, sessions and the audit trail. Times are Unix milliseconds.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    is_admin    INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL
);

-- Single-use login links: only the hash of the token is kept.
CREATE TABLE login_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER
);

-- Browser sign-ins (the cookie's value, hashed).
CREATE TABLE web_sessions (
    cookie_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);

-- Bearer tokens for scripts and agents: user-wide, or scoped to one session.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    session_id  TEXT,
    created_ms  INTEGER NOT NULL,
    last_used_ms INTEGER
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    image       TEXT NOT NULL,
    driver      TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    spec_json   TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    started_ms  INTEGER,
    stopped_ms  INTEGER,
    expires_ms  INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    user_id     TEXT,
    session_id  TEXT,
    kind        TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX audit_events_by_session ON audit_events(session_id, id);
