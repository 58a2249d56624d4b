-- A share link a guest (an editor) made ends with that guest's access: NULL when the
-- session's owner made it.
ALTER TABLE share_links ADD COLUMN creator_guest_id TEXT;
