-- Canopy schema, version 3: second factors.

-- A user's TOTP factor. The secret is stored as is (base32): the issuer must
-- read it to check codes, so hashing is impossible; protect the database
-- file (it is 0600) and its backups. last_step makes each code single-use.
CREATE TABLE totp (
    user_id    TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
    secret     TEXT    NOT NULL CHECK (secret <> ''),
    created_at INTEGER NOT NULL,
    last_step  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Recovery codes, by SHA-256: each works once.
CREATE TABLE recovery_codes (
    user_id TEXT    NOT NULL REFERENCES users (id),
    hash    TEXT    NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT, WITHOUT ROWID;

-- Short-lived single-use challenges: sign-ins waiting for a second factor,
-- WebAuthn ceremonies. id is the SHA-256 of the handle the browser holds.
CREATE TABLE challenges (
    id         TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL DEFAULT '',
    data       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX challenges_expires ON challenges (expires_at);
