-- Canopy schema for PostgreSQL, version 6: the tables of the SQLite backend's 0006,
-- column for column: the OpenID Provider's clients, authorization
-- codes and client access tokens.

-- id is the client_id (random, public); name the operator's label, unique.
-- secret_hash is the hex SHA-256 of the client secret (256 random bits, so
-- a fast hash suffices: there is nothing to guess), '' for a public client.
-- The URI lists and required groups are JSON arrays of strings.
CREATE TABLE oidc_clients (
    id                        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL UNIQUE,
    secret_hash               TEXT    NOT NULL DEFAULT '',
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    backchannel_logout_uri    TEXT    NOT NULL DEFAULT '',
    id_token_alg              TEXT    NOT NULL,
    require_groups            TEXT    NOT NULL DEFAULT '[]',
    created_at                BIGINT  NOT NULL,
    secret_rotated_at         BIGINT
);

-- An authorization code, by the SHA-256 of the code: single-use (used_at is
-- set by the one redemption that wins), bound to its client, redirect URI,
-- PKCE challenge (S256, '' when the confidential client sent none) and
-- nonce. session_id is not a foreign key: sessions are swept.
CREATE TABLE oidc_codes (
    hash           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id      TEXT COLLATE "C" NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    session_id     TEXT COLLATE "C" NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    nonce          TEXT    NOT NULL DEFAULT '',
    code_challenge TEXT    NOT NULL DEFAULT '',
    auth_time      BIGINT  NOT NULL,
    amr            TEXT    NOT NULL DEFAULT '[]',
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT
);

CREATE INDEX oidc_codes_expires ON oidc_codes (expires_at);

-- A client access token (opaque), by its SHA-256, with the code it was
-- issued for: a replayed code revokes it.
CREATE TABLE oidc_tokens (
    hash       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    code_hash  TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    session_id TEXT COLLATE "C" NOT NULL,
    scope      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX oidc_tokens_code ON oidc_tokens (code_hash);
CREATE INDEX oidc_tokens_expires ON oidc_tokens (expires_at);

-- A client refresh token (scope offline_access), by its SHA-256. family_id
-- is the hash of the code that began the family: a replayed code, or a
-- superseded token presented again, revokes the whole family and the access
-- tokens issued in it. Each use supersedes the token and adds its successor.
CREATE TABLE oidc_refresh_tokens (
    hash          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    family_id     TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    session_id    TEXT COLLATE "C" NOT NULL,
    scope         TEXT    NOT NULL,
    auth_time     BIGINT  NOT NULL,
    amr           TEXT    NOT NULL DEFAULT '[]',
    created_at    BIGINT  NOT NULL,
    superseded_at BIGINT,
    revoked_at    BIGINT
);

CREATE INDEX oidc_refresh_tokens_family ON oidc_refresh_tokens (family_id);
