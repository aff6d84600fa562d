-- Canopy schema, version 6: login failure counts shared by several issuer
-- instances (issuer/throttle). One row per throttle key (a SHA-256, hex: no
-- username or address is stored), forgotten after expires_at.
CREATE TABLE throttle_counts (
    key        TEXT    NOT NULL PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX throttle_counts_expiry ON throttle_counts (expires_at);
