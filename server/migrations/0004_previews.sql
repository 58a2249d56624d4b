-- Preview URLs (issue 9): which ports are public, and share links (their secrets hashed).
CREATE TABLE preview_ports (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    port        INTEGER NOT NULL,
    public      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, port)
);

CREATE TABLE share_links (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    port        INTEGER NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX share_links_session ON share_links (session_id, port);
