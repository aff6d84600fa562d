-- Canopy schema for PostgreSQL, version 10: the tables of the SQLite
-- backend's 0010, column for column: OpenID Back-Channel Logout's grants
-- (which clients received a token in which session) and outbox.

-- A client that received tokens in a session: written with each client
-- access token, while the session is locked and still live, so that a
-- session that ends either sees the grant or refused the token. When the
-- session ends, its grants become outbox rows (for clients with a
-- back-channel URI) and are deleted. session_id is not a foreign key:
-- sessions are swept.
CREATE TABLE oidc_grants (
    session_id TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

CREATE INDEX oidc_grants_client ON oidc_grants (client_id);

-- A logout token still to deliver to a client's back-channel URI: written in
-- the transaction that ends the session, one row per client and session,
-- deleted once delivered or given up. next_at is the next attempt (a
-- delivery claims a row by moving it to its retry time and counting the
-- attempt, so instances never send the same attempt twice); reason is the
-- session's revoke reason, or 'expired'.
CREATE TABLE oidc_logout_outbox (
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    session_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    reason     TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    next_at    BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, session_id)
);

CREATE INDEX oidc_logout_outbox_next ON oidc_logout_outbox (next_at);

-- The acr a code was issued with (an acr_values class the session met, ''
-- when none was asked for), kept by the refresh tokens of its family, for
-- the ID tokens' acr claim.
ALTER TABLE oidc_codes ADD COLUMN acr TEXT NOT NULL DEFAULT '';
ALTER TABLE oidc_refresh_tokens ADD COLUMN acr TEXT NOT NULL DEFAULT '';
