-- Canopy schema, version 12: a refresh rotation writes fewer pages.
--
-- A refresh token's row is written once, when it is issued. The session's
-- current_hash says which token is current and every other one of the
-- session is superseded, so a rotation no longer updates the row of the
-- token it replaces (a page of its own in a large table, and its entry in
-- the session index moved). superseded_at is no longer written or read;
-- rows written before keep their value. Pruning keeps a session's newest
-- superseded tokens by created_at, which is when the token before each was
-- superseded: the same order.
CREATE INDEX refresh_tokens_session_created ON refresh_tokens (session_id, created_at);
DROP INDEX refresh_tokens_session_superseded;

-- sessions_user indexes user_id alone. With last_used_at in it, every
-- rotation moved the session's entry (a delete and an insert in the index);
-- listing a user's sessions sorts that user's few rows instead.
DROP INDEX sessions_user;
CREATE INDEX sessions_user ON sessions (user_id);
