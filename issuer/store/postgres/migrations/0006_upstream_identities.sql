-- Canopy schema for PostgreSQL, version 6: accounts at upstream OpenID
-- providers; the tables of the SQLite backend's 0006, column for column.
CREATE TABLE user_identities (
    issuer     TEXT COLLATE "C" NOT NULL CHECK (issuer <> ''),
    subject    TEXT COLLATE "C" NOT NULL CHECK (subject <> ''),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    provider   TEXT COLLATE "C" NOT NULL,
    email      TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE UNIQUE INDEX user_identities_user ON user_identities (user_id, issuer);
CREATE INDEX user_identities_email ON user_identities (email, created_at) WHERE email <> '';

CREATE TABLE session_upstream (
    session_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    provider   TEXT COLLATE "C" NOT NULL,
    groups     TEXT COLLATE "C" NOT NULL DEFAULT ''
);
