-- Canopy schema, version 4: passkeys (WebAuthn credentials).

-- id is the credential ID (base64url): unique across every user, as an
-- authenticator never reuses one. credential is the WebAuthn library's record
-- as JSON (the public key, flags, transports); sign_count is kept apart so a
-- sign-in can advance it with one conditional UPDATE.
CREATE TABLE passkeys (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL DEFAULT '',
    credential   TEXT    NOT NULL,
    sign_count   INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

CREATE INDEX passkeys_user ON passkeys (user_id, created_at);
