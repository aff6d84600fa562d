-- Canopy schema, version 6: accounts at upstream OpenID providers.

-- A user's link to a subject at an upstream provider: the key is the
-- provider's issuer and its subject, never an email. provider is the --idp
-- name at link time (for display); email the address the provider marked
-- verified at link time ('' for none), which a provider configured with
-- link-verified-email may match. One link per user and issuer.
CREATE TABLE user_identities (
    issuer     TEXT    NOT NULL CHECK (issuer <> ''),
    subject    TEXT    NOT NULL CHECK (subject <> ''),
    user_id    TEXT    NOT NULL REFERENCES users (id),
    provider   TEXT    NOT NULL,
    email      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX user_identities_user ON user_identities (user_id, issuer);
CREATE INDEX user_identities_email ON user_identities (email, created_at) WHERE email <> '';

-- The provider a session signed in at and the provider groups (namespaced
-- or mapped, space-separated) it carries, written once after the session
-- and copied into every access token minted in it. Swept with the session.
CREATE TABLE session_upstream (
    session_id TEXT NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    groups     TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
