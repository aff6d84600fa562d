// Package postgres implements store.Store on PostgreSQL, so that several
// issuer instances on several hosts can share one database.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// dialect is what PostgreSQL does differently from the other SQL databases.
// Transactions are READ COMMITTED; what a transaction must not see change
// it locks by row, so writes to different sessions and users run in parallel.
var dialect = sqlstore.Dialect{
	Name:     "postgres",
	BindType: sqlx.DOLLAR,
	Greatest: "GREATEST",
	// As SQLite's NOCASE column does, by the unique index on lower(username).
	UsernameMatch: "lower(username) = lower(?)",
	// A waiter on the session's lock gets the row as the holder committed it
	// (READ COMMITTED re-reads a locked row once it is released), so it sees
	// the rotation it waited for. The user's row is read, not locked.
	LockUpdate:  " FOR UPDATE OF s",
	LockShare:   " FOR SHARE",
	LockSkip:    " FOR UPDATE SKIP LOCKED",
	WritableCTE: true,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at BIGINT  NOT NULL
	)`,
	RevocationLock: fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d), pg_notify('%s', '')`, revocationLock, RevocationChannel),
	MigrationLock:  fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLock),
	IsUnique:       pgCode("23505"),
	IsForeignKey:   pgCode("23503"),
	Unavailable:    unavailable,
	ConnLost:       connLost,
	Retryable:      retryable,
}

// migrationLock is the key of the transaction-scoped advisory lock that
// serialises migrations: any constant, as long as nothing else in the
// database uses it ("canopy" in ASCII).
const migrationLock int64 = 0x63616e6f7079

// revocationLock is the key of the advisory lock that orders the revocation
// log's positions by commit ("canrev" in ASCII).
const revocationLock int64 = 0x63616e726576

// RevocationChannel is the LISTEN/NOTIFY channel on which every revoking
// commit is announced to every issuer instance.
const RevocationChannel = "canopy_revocations"

// migrationFiles holds the schema changes, one file per version, named
// NNNN_what.sql. A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Pool defaults. Each instance holds at most defaultMaxOpenConns connections,
// so ten instances stay well under PostgreSQL's default max_connections of
// 100. A connection lives at most connMaxLifetime, so that after a fail-over
// or a DNS change the pool moves to the new primary without a restart.
const (
	defaultMaxOpenConns = 16
	connMaxLifetime     = 30 * time.Minute
	connMaxIdleTime     = 5 * time.Minute
	// defaultConnectTimeout bounds a connection attempt when the DSN sets no
	// connect_timeout: an unreachable server must turn into a 503, not a
	// request that hangs until the client gives up.
	defaultConnectTimeout = 5 * time.Second
	// openTimeout bounds Open's migration when ctx has no deadline.
	openTimeout = time.Minute
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Now is the clock for bookkeeping times the caller does not pass in
	// (migrations, secrets, events without a time); time.Now when nil.
	Now func() time.Time
	// MaxOpenConns bounds the connection pool; defaultMaxOpenConns when <= 0.
	MaxOpenConns int
}

// Store is the PostgreSQL backend of store.Store: sqlstore.Store on a pool.
type Store struct {
	*sqlstore.Store
	db  *sqlx.DB
	cfg *pgx.ConnConfig // for the LISTEN connection (watch.go)
}

// Open connects to the database at dsn (a postgres:// URL or a key=value
// connection string, as libpq and pgx read them) and brings its schema up to
// date. Every connection runs with synchronous_commit=on unless the DSN says
// otherwise, so a commit (a revocation) is durable before it returns even
// where the server's default was lowered. An unreachable server is an error
// wrapping store.ErrUnavailable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message already hides the password.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	for k, v := range map[string]string{"application_name": "canopy-issuer", "synchronous_commit": "on"} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	maxOpen := opts.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpenConns
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(connMaxLifetime)
	db.SetConnMaxIdleTime(connMaxIdleTime)

	s := &Store{Store: sqlstore.New(db, dialect, opts.Now, maxOpen), db: db, cfg: cfg.Copy()}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	if err := s.Migrate(ctx, migrationFiles); err != nil {
		_ = db.Close() // the migration error is the one worth reporting
		return nil, fmt.Errorf("postgres: open %s: %w", Redact(dsn), err)
	}
	return s, nil
}

// Redact returns dsn with any password replaced by "xxxxx", for messages and
// logs. A string that is not a URL is returned as "(connection string)"
// rather than risk printing a password=… pair.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(connection string)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Settings are the server settings one pooled connection runs with, as SHOW
// reports them.
type Settings struct {
	SynchronousCommit string // "on" (or stronger: remote_write, remote_apply)
	Fsync             string // "on"
	ApplicationName   string
	TransactionIso    string // "read committed"
}

// Settings reads the settings of a pooled connection, so that a test or an
// operator's check can prove the store commits durably.
func (s *Store) Settings(ctx context.Context) (Settings, error) {
	var st Settings
	err := s.db.QueryRowxContext(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync'),
			current_setting('application_name'), current_setting('transaction_isolation')`).
		Scan(&st.SynchronousCommit, &st.Fsync, &st.ApplicationName, &st.TransactionIso)
	if err != nil {
		return Settings{}, dialect.Wrap("settings", err)
	}
	return st, nil
}
