-- Canopy schema, version 1.
-- Every time is an INTEGER of Unix microseconds in UTC: the precision a
-- PostgreSQL timestamptz keeps, so both backends round the same way.

-- A deleted user keeps its row (deleted_at set) so its name stays taken
-- forever: a subdomain's owner must never change. NOCASE makes the name unique
-- regardless of case, as DNS labels are, even if a caller forgets to lowercase.
CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE CHECK (username <> ''),
    password_hash TEXT    NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER
) STRICT;

-- A session is one refresh-token family. current_hash is the token that
-- rotates next; prev_hash and rotated_at are what the grace check needs to let
-- the immediate predecessor converge instead of counting as reuse.
CREATE TABLE sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    auth_time     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    access_until  INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT '',
    ip            TEXT    NOT NULL DEFAULT '',
    current_hash  TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL DEFAULT '',
    rotated_at    INTEGER
) STRICT;

-- The account page lists a user's sessions by last use.
CREATE INDEX sessions_user ON sessions (user_id, last_used_at);
-- The revoked feed scans only revoked sessions by access_until; the partial
-- index keeps it small however many live sessions there are.
CREATE INDEX sessions_revoked ON sessions (access_until) WHERE revoked_at IS NOT NULL;
-- Sweep finds sessions past their absolute end.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every refresh token ever issued in a live session, by SHA-256, so that an
-- older token is recognised as reuse rather than as unknown.
CREATE TABLE refresh_tokens (
    hash          TEXT    NOT NULL PRIMARY KEY,
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    superseded_at INTEGER
) STRICT, WITHOUT ROWID;

-- The cascade from sessions needs it, or each swept session scans the table.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Server secrets (the refresh-token HMAC key), created once by whichever
-- instance commits first.
CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- The audit log. user_id is no foreign key: failed sign-ins for unknown names
-- are recorded too. id orders events in commit order across instances whose
-- clocks may disagree.
CREATE TABLE events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL DEFAULT '',
    username   TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX events_user ON events (user_id, id);
