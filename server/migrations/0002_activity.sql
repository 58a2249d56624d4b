-- The activity feed: who did what in a session, how it went and how long it took. Agents'
-- tool calls are written when they start (status 'started') and updated when they end.
ALTER TABLE audit_events ADD COLUMN actor TEXT;
ALTER TABLE audit_events ADD COLUMN token_id TEXT;
ALTER TABLE audit_events ADD COLUMN summary TEXT;
ALTER TABLE audit_events ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit_events ADD COLUMN error TEXT;
ALTER TABLE audit_events ADD COLUMN duration_ms INTEGER;
ALTER TABLE audit_events ADD COLUMN guest_reported INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN terminal TEXT;
ALTER TABLE audit_events ADD COLUMN guest_seq INTEGER;
