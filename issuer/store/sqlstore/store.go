package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

var _ store.Store = (*Store)(nil)

// Store is store.Store on a SQL database, the same code for every Dialect.
// A backend opens the pool, fills in its Dialect, and embeds the Store.
type Store struct {
	db      *sqlx.DB
	d       Dialect
	q       *Queries
	now     func() time.Time
	maxOpen int
	// writer queues this process's write transactions when the dialect has
	// one writer at a time (SQLite): a connection that finds the lock taken
	// sleeps in its busy handler (1, 2, 5, 10 ms…) long after the holder
	// committed; queued here, the next writer starts the moment the last
	// one ends. Writers in other processes still meet the busy handler.
	// The group writer (group.go) takes it for each batch.
	writer chan struct{}
	// group, when set, runs RotateRefresh as group commit (group.go).
	group *groupWriter
}

// New returns a Store on db, whose pool holds at most maxOpen connections;
// now is the clock for times callers do not pass in (time.Now when nil).
// The caller brings the schema up to date with Migrate.
func New(db *sqlx.DB, d Dialect, now func() time.Time, maxOpen int) *Store {
	s := &Store{db: db, d: d, q: NewQueries(d), now: now, maxOpen: maxOpen}
	if s.now == nil {
		s.now = time.Now
	}
	if d.OneWriter {
		s.writer = make(chan struct{}, 1)
	}
	return s
}

// Close releases the database. Closing twice is harmless.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	return s.d.wrapIf("close", s.db.Close())
}

// Ping checks that the database answers and holds the schema: it reads the
// schema version rather than only pinging a pooled connection.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.SchemaVersion(ctx)
	return err
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.read(ctx, func() error { return s.db.GetContext(ctx, &v, s.q.SchemaVersion) })
	return v, s.d.wrapIf("schema version", err)
}

// maxAttempts bounds how often one operation is tried.
const maxAttempts = 3

// inTx runs fn in one transaction and commits when fn returns nil; any
// error from fn rolls everything back, so no change is ever half-written.
// The transaction is BEGIN IMMEDIATE on SQLite (see its DSN) and READ
// COMMITTED on PostgreSQL, where fn locks the rows it must not see change
// (the dialect's lock clauses).
//
// A transaction the server aborts as a deadlock or a serialization failure
// runs again from the start, as does one whose BEGIN failed on a connection
// that was already dead (a restarted server), which cannot have changed
// anything. A commit whose answer was lost is never retried: it is reported
// as unavailable.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return s.d.Wrap(op+": begin", ctx.Err())
		}
	}
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, op, fn)
		if err == nil || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		var begin *beginError
		switch {
		case errors.As(err, &begin) && s.d.connLost(begin.err):
			s.dropIdle()
		case s.d.retryable(err):
		default:
			return err
		}
	}
}

// beginError marks a failure of BEGIN itself, before fn ran.
type beginError struct{ err error }

func (e *beginError) Error() string { return e.err.Error() }
func (e *beginError) Unwrap() error { return e.err }

func (s *Store) tryTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return s.d.Wrap(op+": begin", &beginError{err})
	}
	if err := fn(tx); err != nil {
		// The rollback error adds nothing: fn's error says why, and a
		// connection that cannot roll back is discarded by database/sql.
		_ = tx.Rollback()
		return err
	}
	return s.d.wrapIf(op+": commit", tx.Commit())
}

// read runs a read-only query function, again when it failed on a dead
// connection: reading twice changes nothing.
func (s *Store) read(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || !s.d.connLost(err) {
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

// get reads one row into dest; no row is store.ErrNotFound, named by what.
func (s *Store) get(ctx context.Context, op, what string, dest any, query string, args ...any) error {
	err := s.read(ctx, func() error { return s.db.GetContext(ctx, dest, query, args...) })
	return s.noRow(err, op, what)
}

// getTx is get inside a transaction, which is never run again by itself.
func (s *Store) getTx(ctx context.Context, tx *sqlx.Tx, op, what string, dest any, query string, args ...any) error {
	return s.noRow(tx.GetContext(ctx, dest, query, args...), op, what)
}

// noRow translates sql.ErrNoRows into store.ErrNotFound, named by what.
func (s *Store) noRow(err error, op, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return s.d.fail(op, what, store.ErrNotFound)
	}
	return s.d.wrapIf(op, err)
}

// list reads rows of type R; none is an empty slice, not nil.
func list[R any](ctx context.Context, s *Store, op, query string, args ...any) ([]R, error) {
	var rows []R
	err := s.read(ctx, func() error {
		rows = []R{} // a retry starts afresh
		return s.db.SelectContext(ctx, &rows, query, args...)
	})
	if err != nil {
		return nil, s.d.Wrap(op, err)
	}
	return rows, nil
}

// execer is a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// exec runs one write and returns how many rows it changed. A write alone
// is not retried: it may have run before its answer was lost.
func (s *Store) exec(ctx context.Context, ex execer, op, query string, args ...any) (int64, error) {
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, s.d.Wrap(op, err)
	}
	n, err := res.RowsAffected()
	return n, s.d.wrapIf(op, err)
}

// execOne runs a write that must change a row; none is store.ErrNotFound,
// named by what.
func (s *Store) execOne(ctx context.Context, ex execer, op, what, query string, args ...any) error {
	n, err := s.exec(ctx, ex, op, query, args...)
	if err == nil && n == 0 {
		return s.d.fail(op, what, store.ErrNotFound)
	}
	return err
}

// insert runs an INSERT; a unique violation is store.ErrConflict and a
// foreign key violation (a missing parent) store.ErrNotFound, named by what.
func (s *Store) insert(ctx context.Context, ex execer, op, what, query string, args ...any) error {
	_, err := ex.ExecContext(ctx, query, args...)
	switch {
	case err == nil:
		return nil
	case s.d.IsUnique(err):
		return s.d.fail(op, what, store.ErrConflict)
	case s.d.IsForeignKey(err):
		return s.d.fail(op, what, store.ErrNotFound)
	}
	return s.d.Wrap(op, err)
}
