// Package storecopy copies an issuer's state from its SQLite database into an
// empty PostgreSQL one (`issuer store copy`), table by table and row for row,
// so that sessions, refresh tokens mid-rotation and server secrets survive
// the move and every signed-in user stays signed in.
package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // the source's driver

	"github.com/canopy-sso/canopy/issuer/store/postgres"
)

// schemaVersion is the schema, on both sides, that the table list below
// maps. A newer schema on either side needs a new mapping first.
const schemaVersion = 12

// ErrTargetNotEmpty: the target already holds users, sessions or events.
// Copying into it would mix two issuers' states.
var ErrTargetNotEmpty = errors.New("storecopy: target database is not empty")

// kind is how a column's SQLite value becomes a PostgreSQL one.
type kind int

const (
	text    kind = iota // TEXT
	integer             // INTEGER → BIGINT, NULL allowed
	boolean             // INTEGER 0/1 → BOOLEAN
	blob                // BLOB → BYTEA
)

type column struct {
	name string
	kind kind
}

type table struct {
	name    string
	columns []column
	order   string // ORDER BY of the source query, for a stable copy
}

// tables lists what is copied, parents before children (foreign keys), with
// every column of schema version 10 (see both backends' migrations). The
// migrations table is not copied: the target has its own.
var tables = []table{
	{"users", cols("id", "username", "password_hash", text, "disabled", boolean, "created_at", "deleted_at", integer), "id"},
	{"user_groups", cols("user_id", "group_name", text), "user_id, group_name"},
	{"sessions", cols("id", "user_id", text, "created_at", "auth_time", "expires_at", "last_used_at", "access_until", "revoked_at", integer,
		"revoke_reason", "user_agent", "ip", "current_hash", "prev_hash", text, "rotated_at", integer), "id"},
	{"user_revocations", cols("user_id", text, "before_at", "until_at", integer, "except_sid", text, "created_at", integer), "user_id, before_at, except_sid, until_at"},
	{"session_amr", cols("session_id", "amr", text), "session_id"},
	{"refresh_tokens", cols("hash", "session_id", text, "created_at", "superseded_at", integer), "hash"},
	{"totp", cols("user_id", "secret", text, "created_at", "last_step", integer), "user_id"},
	{"recovery_codes", cols("user_id", "hash", text, "used_at", integer), "user_id, hash"},
	{"passkeys", cols("id", "user_id", "name", "credential", text, "sign_count", "created_at", "last_used_at", integer), "id"},
	{"user_identities", cols("issuer", "subject", "user_id", "provider", "email", text, "created_at", integer), "issuer, subject"},
	{"session_upstream", cols("session_id", "provider", "groups", text), "session_id"},
	{"challenges", cols("id", "kind", "user_id", "data", text, "created_at", "expires_at", integer), "id"},
	{"oidc_clients", cols("id", "name", "secret_hash", text, "public", boolean, "redirect_uris", "post_logout_redirect_uris",
		"backchannel_logout_uri", "id_token_alg", "require_groups", text, "created_at", "secret_rotated_at", integer), "id"},
	{"oidc_codes", cols("hash", "client_id", "user_id", "session_id", "redirect_uri", "scope", "nonce", "code_challenge", text,
		"auth_time", integer, "amr", text, "created_at", "expires_at", "used_at", integer, "acr", text), "hash"},
	{"oidc_tokens", cols("hash", "code_hash", "client_id", "user_id", "session_id", "scope", text,
		"created_at", "expires_at", "revoked_at", integer), "hash"},
	{"oidc_refresh_tokens", cols("hash", "family_id", "client_id", "user_id", "session_id", "scope", text, "auth_time", integer,
		"amr", text, "created_at", "superseded_at", "revoked_at", integer, "acr", text), "hash"},
	{"oidc_grants", cols("session_id", "client_id", "user_id", text, "created_at", integer), "session_id, client_id"},
	{"oidc_logout_outbox", cols("client_id", "session_id", "user_id", "reason", text, "created_at", "next_at", "attempts", integer),
		"client_id, session_id"},
	{"secrets", cols("name", text, "value", blob, "created_at", integer), "name"},
	{"revocation_log", cols("pos", integer, "sid", "user_id", text, "before_at", integer, "except_sid", text, "until_at", "created_at", integer), "pos"},
	{"events", cols("id", "at", integer, "kind", "user_id", "username", "session_id", "ip", "user_agent", "detail", text), "id"},
	{"throttle_counts", cols("key", text, "failures", "last_at", "expires_at", integer), "key"},
}

// cols builds a column list from names, each run of names followed by their kind.
func cols(spec ...any) []column {
	var out, pending []column
	for _, v := range spec {
		switch v := v.(type) {
		case string:
			pending = append(pending, column{name: v})
		case kind:
			for _, c := range pending {
				out = append(out, column{name: c.name, kind: v})
			}
			pending = nil
		}
	}
	return out
}

func (t table) columnList() string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// Count is one table's row count on both sides after the copy.
type Count struct {
	Table          string
	Source, Target int64
}

// Result is what a copy did.
type Result struct {
	Counts []Count
	// ReplacedSecrets names the target's server secrets (made by an issuer
	// that started on it) that the source's replaced.
	ReplacedSecrets []string
}

// Copy copies the SQLite database at sqlitePath into the PostgreSQL database
// at pgDSN, bringing the target's schema up to date first. The source is
// read in one read-only transaction (a consistent snapshot, even while an
// issuer still writes to it; stop the issuers first, or their later writes
// are not copied). The target is written in one transaction that locks its
// tables and first checks that it holds no users, sessions, refresh tokens
// or events (else ErrTargetNotEmpty); its server secrets, made by an issuer
// that only started on it, are replaced by the source's, which the copied
// refresh tokens need. Row counts are compared per table before commit: any
// difference rolls everything back.
func Copy(ctx context.Context, sqlitePath, pgDSN string) (Result, error) {
	src, err := openSource(sqlitePath)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = src.Close() }()
	stx, err := src.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Result{}, fmt.Errorf("storecopy: source %s: %w", sqlitePath, err)
	}
	defer func() { _ = stx.Rollback() }() // read-only: nothing to keep
	if err := checkVersion(ctx, stx, "source "+sqlitePath); err != nil {
		return Result{}, err
	}

	dst, err := openTarget(ctx, pgDSN)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = dst.Close() }()
	dtx, err := dst.BeginTxx(ctx, nil)
	if err != nil {
		return Result{}, fmt.Errorf("storecopy: target: %w", err)
	}
	defer func() { _ = dtx.Rollback() }() // after Commit, a no-op
	res, err := copyAll(ctx, stx, dtx)
	if err != nil {
		return Result{}, err
	}
	if err := dtx.Commit(); err != nil {
		return Result{}, fmt.Errorf("storecopy: target: commit: %w", err)
	}
	// Fresh statistics, so that the first requests get good plans.
	if _, err := dst.ExecContext(ctx, `ANALYZE`); err != nil {
		return res, fmt.Errorf("storecopy: copied, but ANALYZE failed: %w", err)
	}
	return res, nil
}

// openSource opens the SQLite file read-only; it must exist.
func openSource(path string) (*sqlx.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storecopy: source %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("storecopy: source: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "mode=ro&_busy_timeout=10000"}
	db, err := sqlx.Open("sqlite3", u.String())
	if err != nil {
		return nil, fmt.Errorf("storecopy: source %s: %w", path, err)
	}
	return db, nil
}

// openTarget migrates the target through the postgres backend, so its schema
// is exactly the one the issuer runs on, then opens it for raw table access.
func openTarget(ctx context.Context, dsn string) (*sqlx.DB, error) {
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return nil, fmt.Errorf("storecopy: target: %w", err)
	}
	v, err := s.SchemaVersion(ctx)
	_ = s.Close() // only needed for the migration
	if err != nil {
		return nil, fmt.Errorf("storecopy: target: %w", err)
	}
	if v != schemaVersion {
		return nil, fmt.Errorf("storecopy: target schema version %d; this program copies version %d", v, schemaVersion)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("storecopy: target: %w", err)
	}
	return sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx"), nil
}

func checkVersion(ctx context.Context, tx *sqlx.Tx, what string) error {
	var v int
	if err := tx.GetContext(ctx, &v, `SELECT COALESCE(MAX(version), 0) FROM migrations`); err != nil {
		return fmt.Errorf("storecopy: %s: not an issuer database? %w", what, err)
	}
	if v != schemaVersion {
		return fmt.Errorf("storecopy: %s: schema version %d; this program copies version %d (run the matching issuer on it first)", what, v, schemaVersion)
	}
	return nil
}

// copyAll does the copy inside the two transactions and verifies it.
func copyAll(ctx context.Context, src, dst *sqlx.Tx) (Result, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	// Writers (an issuer already started on the target) wait until the copy
	// commits; readers do not.
	if _, err := dst.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return Result{}, fmt.Errorf("storecopy: target: lock: %w", err)
	}
	var present []string
	for _, name := range []string{"users", "sessions", "refresh_tokens", "events"} {
		var n int64
		if err := dst.GetContext(ctx, &n, `SELECT count(*) FROM `+name); err != nil {
			return Result{}, fmt.Errorf("storecopy: target: %w", err)
		}
		if n > 0 {
			present = append(present, fmt.Sprintf("%d %s", n, name))
		}
	}
	if len(present) > 0 {
		return Result{}, fmt.Errorf("%w: it holds %s; copy into a new, empty database", ErrTargetNotEmpty, strings.Join(present, ", "))
	}
	var res Result
	if err := dst.SelectContext(ctx, &res.ReplacedSecrets, `DELETE FROM secrets RETURNING name`); err != nil {
		return Result{}, fmt.Errorf("storecopy: target: clear secrets: %w", err)
	}

	for _, t := range tables {
		if err := copyTable(ctx, src, dst, t); err != nil {
			return Result{}, err
		}
	}
	// The copied events kept their ids; new ones continue after them.
	if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('events', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM events`); err != nil {
		return Result{}, fmt.Errorf("storecopy: target: events sequence: %w", err)
	}
	// The log keeps its positions too, so the cursors relying services hold
	// stay valid on the new database, and new positions continue after them.
	if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('revocation_log', 'pos'), COALESCE(MAX(pos), 0) + 1, false) FROM revocation_log`); err != nil {
		return Result{}, fmt.Errorf("storecopy: target: revocation log sequence: %w", err)
	}

	var mismatched []string
	for _, t := range tables {
		c := Count{Table: t.name}
		if err := src.GetContext(ctx, &c.Source, `SELECT count(*) FROM `+t.name); err != nil {
			return Result{}, fmt.Errorf("storecopy: source: count %s: %w", t.name, err)
		}
		if err := dst.GetContext(ctx, &c.Target, `SELECT count(*) FROM `+t.name); err != nil {
			return Result{}, fmt.Errorf("storecopy: target: count %s: %w", t.name, err)
		}
		if c.Source != c.Target {
			mismatched = append(mismatched, fmt.Sprintf("%s: %d in the source, %d in the target", t.name, c.Source, c.Target))
		}
		res.Counts = append(res.Counts, c)
	}
	if len(mismatched) > 0 {
		return Result{}, fmt.Errorf("storecopy: counts differ, nothing copied: %s", strings.Join(mismatched, "; "))
	}
	return res, nil
}
