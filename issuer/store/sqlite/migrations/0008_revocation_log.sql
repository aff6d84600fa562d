-- Canopy schema, version 6: the revocation log, one row per revocation in
-- commit order, so that relying services can read the feed incrementally
-- (?after=CURSOR) and the stream can resume (Last-Event-ID). pos is the
-- cursor: SQLite admits one writer at a time, so AUTOINCREMENT positions are
-- assigned in commit order and never reused. A row is a session (sid set) or
-- a user-level entry (user_id and before_at set), as in the feed.
CREATE TABLE revocation_log (
    pos        INTEGER PRIMARY KEY AUTOINCREMENT,
    sid        TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    before_at  INTEGER NOT NULL DEFAULT 0,
    except_sid TEXT    NOT NULL DEFAULT '',
    until_at   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Pruning scans by until_at.
CREATE INDEX revocation_log_until ON revocation_log (until_at);
