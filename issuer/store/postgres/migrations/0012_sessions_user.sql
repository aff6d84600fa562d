-- Canopy schema, version 12: sessions_user indexes user_id alone. With
-- last_used_at in it, every refresh moved the session's entry (a delete
-- and an insert in the index, on a page of its own, at every rotation);
-- listing a user's sessions sorts that user's few rows instead.
DROP INDEX sessions_user;
CREATE INDEX sessions_user ON sessions (user_id);
