-- Canopy schema, version 5: user-level revocations, one row for every
-- session a user had when disabled, deleted, changing the password or
-- signing out everywhere, so the revocation feed grows with events rather
-- than sessions. before_at is a whole second (tokens with iat before it are
-- revoked); until_at the latest access_until of those sessions; except_sid
-- the session spared ('' for none). Rows are pruned once until_at is long past.
CREATE TABLE user_revocations (
    user_id    TEXT    NOT NULL REFERENCES users (id),
    before_at  INTEGER NOT NULL,
    until_at   INTEGER NOT NULL,
    except_sid TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;

-- The feed's "is this session covered" check looks rows up by user.
CREATE INDEX user_revocations_user ON user_revocations (user_id, before_at);
-- The feed's window and the pruning scan by until_at.
CREATE INDEX user_revocations_until ON user_revocations (until_at);
