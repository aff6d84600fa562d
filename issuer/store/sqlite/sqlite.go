// Package sqlite implements store.Store on a SQLite file, safe to share
// between several issuer processes on one host.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// dialect is what SQLite does differently from the other SQL databases.
// Every write transaction is BEGIN IMMEDIATE (see dsn), which takes the
// database's write lock up front: no row locks are needed, and one writer
// at a time is queued in Go.
var dialect = sqlstore.Dialect{
	Name:          "sqlite",
	BindType:      sqlx.QUESTION,
	Greatest:      "MAX",
	UsernameMatch: "username = ?", // the column's collation is NOCASE
	OneWriter:     true,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`,
	IsUnique:     isConstraint(sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique),
	IsForeignKey: isConstraint(sqlite3.ErrConstraintForeignKey),
	Unavailable:  unavailable,
}

// migrationFiles holds the schema changes, one file per version, named
// NNNN_what.sql. A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a connection waits for another writer (in this or
// another process) before giving up with SQLITE_BUSY. Writes are short, so
// waiting this long means the database is stuck, not merely contended.
const busyTimeout = 10 * time.Second

// defaultMaxOpenConns bounds the pool: SQLite has one writer at a time, so
// more connections only add lock contention, while a few let reads proceed
// next to a write under WAL.
const defaultMaxOpenConns = 8

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Now is the clock for bookkeeping times the caller does not pass in
	// (migrations, secrets, events without a time); time.Now when nil.
	Now func() time.Time
	// MaxOpenConns bounds the connection pool; defaultMaxOpenConns when <= 0.
	MaxOpenConns int
	// CommitEach runs every refresh rotation in a transaction and fsync
	// of its own, as before group commit, with SQLite's own WAL
	// checkpoints on the committing connection: the slower path, kept for
	// comparison (the load test's baseline). By default rotations share
	// transactions (Group) and the WAL is checkpointed in the background.
	CommitEach bool
	// Group tunes group commit; the zero value takes sqlstore's defaults.
	Group sqlstore.GroupCommit
}

// Store is the SQLite backend of store.Store: sqlstore.Store on a file.
type Store struct {
	*sqlstore.Store
	db      *sqlx.DB
	maxOpen int
	ckpt    *checkpointer // nil with CommitEach: SQLite's own autocheckpoint
}

// Open opens (creating when missing) the database file at path and brings its
// schema up to date. The file and its parent directory are private to the
// owner: the database holds password hashes and the refresh-token secret.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: create directory: %w", path, err)
	}
	// SQLite would create the file with the umask's mode (usually 0644); make
	// it 0600 first. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w: %w", path, store.ErrUnavailable, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}

	db := sqlx.NewDb(sql.OpenDB(newConnector(abs, !opts.CommitEach)), "sqlite3")
	maxOpen := opts.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpenConns
	}
	if !opts.CommitEach {
		maxOpen = max(maxOpen, 2) // the group writer holds one of them
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	// Idle connections are cheap but hold file descriptors and page caches;
	// drop them after a quiet spell.
	db.SetConnMaxIdleTime(5 * time.Minute)

	s := &Store{Store: sqlstore.New(db, dialect, opts.Now, maxOpen), db: db, maxOpen: maxOpen}
	ctx, cancel := context.WithTimeout(context.Background(), 2*busyTimeout)
	defer cancel()
	if err := s.Migrate(ctx, migrationFiles); err != nil {
		_ = db.Close() // the migration error is the one worth reporting
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if !opts.CommitEach {
		g := opts.Group
		if g.ConnSetup == nil {
			g.ConnSetup = writerSetup
		}
		if err := s.StartGroupCommit(g); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
		}
		s.ckpt = startCheckpointer(s, abs)
	}
	return s, nil
}

// writerCacheKiB bounds the page cache of the group writer's connection,
// the one that runs every rotation: the other connections keep SQLite's
// default (2 MiB). A rotation reads the presented token, its session and
// user, and the session's newest tokens, and inserts the successor; with
// the cache holding the tables' upper levels and the pages recent batches
// touched, those are memory reads rather than one read(2) from the WAL or
// the file per page.
const writerCacheKiB = 16 << 10

// writerSetup is the group writer's connection setup (GroupCommit.ConnSetup).
func writerSetup(ctx context.Context, conn *sqlx.Conn) error {
	_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB))
	return err
}

// dsn builds a file: URI so that any character in the path (even '?' or
// '#') is escaped rather than parsed as parameters. The parameters are applied
// by mattn/go-sqlite3 to every connection it opens, so no pooled connection
// ever runs without them:
//   - synchronous=FULL makes a commit durable before it returns, because a
//     revocation must survive a crash once the response is sent;
//   - foreign_keys is off by default in SQLite, per connection;
//   - _txlock=immediate makes every transaction BEGIN IMMEDIATE, taking the
//     write lock up front, so a read-modify-write never fails half-way with
//     SQLITE_BUSY and exactly one concurrent writer wins;
//   - _stmt_cache_size keeps each connection's prepared statements, which
//     otherwise are compiled anew on every call, inside the write lock too.
//
// WAL is set by enableWAL instead, see there.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	q.Set("_stmt_cache_size", "64")
	u.RawQuery = q.Encode()
	return u.String()
}

// connector opens every pooled connection with the DSN's settings and then
// enableWAL. It is local to one Store, unlike a driver registered globally.
type connector struct {
	dsn    string
	driver *sqlite3.SQLiteDriver
}

// newConnector opens connections to abs; with backgroundCheckpoint they
// leave checkpoints to the Store's checkpointer (checkpoint.go).
func newConnector(abs string, backgroundCheckpoint bool) connector {
	hook := enableWAL
	if backgroundCheckpoint {
		hook = func(conn *sqlite3.SQLiteConn) error {
			if err := enableWAL(conn); err != nil {
				return err
			}
			if _, err := conn.Exec("PRAGMA wal_autocheckpoint = 0", nil); err != nil {
				return err
			}
			_, err := conn.Exec(fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit), nil)
			return err
		}
	}
	return connector{dsn: dsn(abs), driver: &sqlite3.SQLiteDriver{ConnectHook: hook}}
}

// Connect opens one connection.
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.driver.Open(c.dsn)
}

// Driver returns the underlying driver.
func (c connector) Driver() driver.Driver { return c.driver }

// enableWAL switches the connection to WAL, which lets readers proceed during
// a write. Switching a new database's journal mode needs an exclusive lock
// that SQLite takes without calling the busy handler, so when several
// processes create the file at once all but one would fail with SQLITE_BUSY
// (as mattn's _journal_mode parameter does); this retries until busyTimeout.
// On a database already in WAL the pragma is a no-op that succeeds at once.
func enableWAL(conn *sqlite3.SQLiteConn) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		mode, err := setJournalMode(conn, "WAL")
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			// SQLite answers with the old mode when it cannot switch, for
			// example on a file system without shared memory.
			err = fmt.Errorf("journal_mode is %q, not wal", mode)
		} else if !isBusy(err) {
			return fmt.Errorf("enable WAL: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("enable WAL: %w", err)
		}
		time.Sleep(wait)
	}
}

func setJournalMode(conn *sqlite3.SQLiteConn, mode string) (string, error) {
	rows, err := conn.Query("PRAGMA journal_mode = "+mode, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = rows.Close() }() // the pragma is done once read
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return "", err
	}
	got, _ := dest[0].(string)
	return got, nil
}

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// ConnPragmas are the settings one pooled connection runs with.
type ConnPragmas struct {
	JournalMode string // "wal"
	Synchronous int    // 2 is FULL
	ForeignKeys int    // 1 is on
	BusyTimeout int    // milliseconds
	// AutoCheckpoint is wal_autocheckpoint in pages: 0 under group
	// commit, whose store checkpoints in the background.
	AutoCheckpoint int
}

// Pragmas reads the settings of as many connections as the pool may hold, all
// checked out at once so that each is a distinct connection. It lets a test
// (or an operator's check) prove that no connection runs with SQLite's unsafe
// defaults.
//
// Under group commit the writer holds one connection of the pool as its
// own; it is read too, between two batches, as the last one.
func (s *Store) Pragmas(ctx context.Context) ([]ConnPragmas, error) {
	pooled := s.maxOpen
	if s.ckpt != nil { // group commit
		pooled--
	}
	conns := make([]*sqlx.Conn, 0, pooled)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // returns the connection to the pool
		}
	}()
	for range pooled {
		c, err := s.db.Connx(ctx)
		if err != nil {
			return nil, dialect.Wrap("pragmas: connect", err)
		}
		conns = append(conns, c)
	}
	out := make([]ConnPragmas, 0, s.maxOpen)
	for _, c := range conns {
		p, err := connPragmas(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if _, err := s.WithWriterConn(ctx, func(c *sqlx.Conn) error {
		p, err := connPragmas(ctx, c)
		out = append(out, p)
		return err
	}); err != nil {
		return nil, err
	}
	return out, nil
}

func connPragmas(ctx context.Context, c *sqlx.Conn) (ConnPragmas, error) {
	var p ConnPragmas
	for _, q := range []struct {
		pragma string
		dst    any
	}{
		{"journal_mode", &p.JournalMode},
		{"synchronous", &p.Synchronous},
		{"foreign_keys", &p.ForeignKeys},
		{"busy_timeout", &p.BusyTimeout},
		{"wal_autocheckpoint", &p.AutoCheckpoint},
	} {
		if err := c.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			return ConnPragmas{}, dialect.Wrap("pragma "+q.pragma, err)
		}
	}
	return p, nil
}

// unavailable reports whether err means the database file is gone, broken or
// locked beyond the busy timeout, rather than a problem with one request.
func unavailable(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return errors.Is(err, sql.ErrConnDone)
	}
	switch se.Code {
	case sqlite3.ErrCantOpen, sqlite3.ErrIoErr, sqlite3.ErrCorrupt, sqlite3.ErrNotADB,
		sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrBusy,
		sqlite3.ErrLocked, sqlite3.ErrNomem, sqlite3.ErrNoLFS, sqlite3.ErrAuth:
		return true
	}
	return false
}

// isConstraint returns a test for the given constraint violations.
func isConstraint(codes ...sqlite3.ErrNoExtended) func(error) bool {
	return func(err error) bool {
		var se sqlite3.Error
		return errors.As(err, &se) && slices.Contains(codes, se.ExtendedCode)
	}
}
