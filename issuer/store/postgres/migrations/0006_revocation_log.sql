-- Canopy schema for PostgreSQL, version 6: the revocation log of the SQLite
-- backend's 0006, column for column. Transactions commit out of order here,
-- so pos is drawn only under a transaction-level advisory lock taken just
-- before commit (sqlstore's logRevocation): positions follow commit order.
CREATE TABLE revocation_log (
    pos        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid        TEXT COLLATE "C" NOT NULL DEFAULT '',
    user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    before_at  BIGINT NOT NULL DEFAULT 0,
    except_sid TEXT COLLATE "C" NOT NULL DEFAULT '',
    until_at   BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX revocation_log_until ON revocation_log (until_at);
