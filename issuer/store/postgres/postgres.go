// Package postgres implements store.Store on PostgreSQL, so that several
// issuer instances on several hosts can share one database.
package postgres

import (
	"context"
	"errors"
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

// queries are the statements shared with the SQLite backend, with $n placeholders.
var queries = sqlstore.NewQueries(sqlx.DOLLAR)

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

// Store is the PostgreSQL backend of store.Store.
type Store struct {
	db      *sqlx.DB
	now     func() time.Time
	maxOpen int
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

	s := &Store{db: db, now: opts.Now, maxOpen: maxOpen}
	if s.now == nil {
		s.now = time.Now
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	if err := s.migrate(ctx); err != nil {
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

// Close releases the database. Closing twice is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers and holds the schema: it reads the
// schema version rather than only pinging a pooled connection.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.SchemaVersion(ctx)
	return err
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
	err := s.read(ctx, func() error {
		return s.db.QueryRowxContext(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync'),
			current_setting('application_name'), current_setting('transaction_isolation')`).
			Scan(&st.SynchronousCommit, &st.Fsync, &st.ApplicationName, &st.TransactionIso)
	})
	if err != nil {
		return Settings{}, wrap("settings", err)
	}
	return st, nil
}

// inTx runs fn in one READ COMMITTED transaction and commits when fn returns
// nil; any error from fn rolls everything back. Rows fn must not see change
// under it are locked by fn (SELECT … FOR UPDATE). A transaction that the
// server aborts as a deadlock or a serialization failure is run again, from
// the start; so is one whose BEGIN failed on a connection that was already
// dead (a restarted server), which cannot have changed anything. A commit
// whose answer was lost is never retried: it is reported as unavailable.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, op, fn)
		if err == nil || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		var begin *beginError
		switch {
		case errors.As(err, &begin) && connLost(begin.err):
			s.dropIdle()
		case retryable(err):
		default:
			return err
		}
	}
}

// maxAttempts bounds how often one operation is tried.
const maxAttempts = 3

// beginError marks a failure of BEGIN itself, before fn ran.
type beginError struct{ err error }

func (e *beginError) Error() string { return e.err.Error() }
func (e *beginError) Unwrap() error { return e.err }

func (s *Store) tryTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return wrap(op+": begin", &beginError{err})
	}
	if err := fn(tx); err != nil {
		// The rollback error adds nothing: fn's error says why, and a
		// connection that cannot roll back is discarded by database/sql.
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap(op+": commit", err)
	}
	return nil
}

// read runs a read-only query function, again when it failed on a dead
// connection: reading twice changes nothing.
func (s *Store) read(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || !connLost(err) {
			return err
		}
		s.dropIdle()
	}
}

// dropIdle closes every idle pooled connection. One dead connection means
// the server restarted or failed over, so its idle siblings are dead too;
// without this each of them would fail one more request in turn.
func (s *Store) dropIdle() {
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(s.maxOpen)
}
