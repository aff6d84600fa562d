-- Canopy schema for PostgreSQL, version 3: second factors; the tables of the
-- SQLite backend's 0003, column for column.

-- A user's TOTP factor. The secret is stored as is (base32): the issuer must
-- read it to check codes, so hashing is impossible; protect the database and
-- its backups. last_step makes each code single-use.
CREATE TABLE totp (
    user_id    TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (id),
    secret     TEXT   NOT NULL CHECK (secret <> ''),
    created_at BIGINT NOT NULL,
    last_step  BIGINT NOT NULL DEFAULT 0
);

-- Recovery codes, by SHA-256: each works once.
CREATE TABLE recovery_codes (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    hash    TEXT COLLATE "C" NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, hash)
);

-- Short-lived single-use challenges: sign-ins waiting for a second factor,
-- WebAuthn ceremonies. id is the SHA-256 of the handle the browser holds.
CREATE TABLE challenges (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    data       TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX challenges_expires ON challenges (expires_at);
