-- Sandbox networking (issue 7): whether a session's sandbox has egress.
ALTER TABLE sessions ADD COLUMN network INTEGER NOT NULL DEFAULT 1;
