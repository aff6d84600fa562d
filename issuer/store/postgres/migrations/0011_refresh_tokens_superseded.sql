-- Canopy schema, version 11: the session index of refresh_tokens also holds
-- superseded_at, so a rotation's pruning step reads a session's superseded
-- tokens from the index alone (one lookup per token before). It still
-- serves the cascade from sessions, which needs only its first column.
CREATE INDEX refresh_tokens_session_superseded ON refresh_tokens (session_id, superseded_at);
DROP INDEX refresh_tokens_session;
