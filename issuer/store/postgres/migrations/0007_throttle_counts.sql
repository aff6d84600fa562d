-- Canopy schema for PostgreSQL, version 6: login failure counts shared by
-- several issuer instances; the table of the SQLite backend's 0006, column
-- for column.
CREATE TABLE throttle_counts (
    key        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_at    BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);

CREATE INDEX throttle_counts_expiry ON throttle_counts (expires_at);
