-- People (issue 10): invite links to one session with a role, and the guests they made.
-- Secrets and cookies are kept hashed.
CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE INDEX invites_session ON invites (session_id);

CREATE TABLE guests (
    id          TEXT PRIMARY KEY,
    invite_id   TEXT NOT NULL REFERENCES invites(id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    cookie_hash TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    removed_ms  INTEGER
);
CREATE INDEX guests_session ON guests (session_id);
