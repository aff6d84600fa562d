-- Canopy schema, version 2: groups, and how each session signed in.

-- A user's groups. Rows of a deleted user stay (like the user's row) and are
-- never listed.
CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users (id),
    group_name TEXT NOT NULL CHECK (group_name <> ''),
    PRIMARY KEY (user_id, group_name)
) STRICT, WITHOUT ROWID;

CREATE INDEX user_groups_group ON user_groups (group_name, user_id);

-- The authentication methods (RFC 8176 amr, space-separated) of a session's
-- sign-in, written once after the session and copied into every access token
-- minted in it. Swept with the session.
CREATE TABLE session_amr (
    session_id TEXT NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    amr        TEXT NOT NULL
) STRICT, WITHOUT ROWID;
