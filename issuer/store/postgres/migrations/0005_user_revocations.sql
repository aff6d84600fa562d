-- Canopy schema for PostgreSQL, version 5: user-level revocations; the table
-- of the SQLite backend's 0005, column for column.
CREATE TABLE user_revocations (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    before_at  BIGINT NOT NULL,
    until_at   BIGINT NOT NULL,
    except_sid TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE INDEX user_revocations_user ON user_revocations (user_id, before_at);
CREATE INDEX user_revocations_until ON user_revocations (until_at);
