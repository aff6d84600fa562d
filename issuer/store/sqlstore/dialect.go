package sqlstore

import (
	"fmt"
	"strings"

	"github.com/canopy-sso/canopy/issuer/store"
)

// Dialect is what one database does differently from the others. Every query
// is written once, in sqlstore; a backend fills in a Dialect and opens the
// connection pool.
type Dialect struct {
	// Name prefixes every error: "sqlite", "postgres".
	Name string
	// BindType is the placeholder style (sqlx.QUESTION, sqlx.DOLLAR) every
	// query, written with '?', is rebound to.
	BindType int
	// Greatest is the function of the larger of two values: MAX in SQLite,
	// GREATEST in PostgreSQL.
	Greatest string
	// UsernameMatch compares the username column with one parameter in any
	// letter case, the way the database's unique index on usernames does.
	UsernameMatch string

	// Row locks, appended to a SELECT: LockUpdate to the rotation's read of
	// the presented token's session, LockShare to checks that a user is
	// live, LockSkip to the subqueries of sweeps. Empty where a write
	// transaction holds the whole database anyway (SQLite's BEGIN IMMEDIATE).
	LockUpdate, LockShare, LockSkip string
	// OneWriter: the database admits one writer at a time, so the store
	// queues this process's write transactions in Go (see Store.inTx).
	OneWriter bool
	// WritableCTE: the database runs INSERT and UPDATE inside WITH, so
	// statements chained by chain run as one statement. Otherwise chain
	// joins them with ';', which the driver must run in turn in one call.
	WritableCTE bool

	// RevocationLock runs in a revoking transaction just before its
	// revocations are logged, and must hold until commit whatever orders
	// log positions by commit: PostgreSQL draws positions before commit and
	// commits transactions out of order, so it takes a transaction-level
	// advisory lock (and queues a NOTIFY, delivered at commit). Empty where
	// one writer at a time already orders them (SQLite).
	RevocationLock string

	// MigrationsTable creates the migrations table when missing.
	MigrationsTable string
	// MigrationLock, when set, runs first in the migration transaction and
	// serialises instances starting at once.
	MigrationLock string

	// IsUnique and IsForeignKey recognise a unique or primary key, or a
	// foreign key, violation.
	IsUnique, IsForeignKey func(error) bool
	// Unavailable reports whether err means the database cannot serve
	// anyone now (gone, down, full, locked), not a problem of one request.
	Unavailable func(error) bool
	// ConnLost reports whether the connection died under a request, so
	// that a read, or a transaction whose BEGIN failed, may run again on a
	// new one. nil: never.
	ConnLost func(error) bool
	// Retryable reports whether the server aborted a transaction only
	// because of a concurrent one (deadlock, serialization failure), so
	// that running it again is the remedy. nil: never.
	Retryable func(error) bool
}

// Wrap names the operation and translates driver errors that mean the
// database cannot be used at all into store.ErrUnavailable, keeping the
// driver's error in the chain for the log.
func (d Dialect) Wrap(op string, err error) error {
	if d.Unavailable(err) {
		return fmt.Errorf("%s: %s: %w: %w", d.Name, op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", d.Name, op, err)
}

// wrapIf is Wrap for an error that may be nil.
func (d Dialect) wrapIf(op string, err error) error {
	if err == nil {
		return nil
	}
	return d.Wrap(op, err)
}

// errorf is an error of the store named for the dialect.
func (d Dialect) errorf(format string, args ...any) error {
	return fmt.Errorf(d.Name+": "+format, args...)
}

// fail is the store's sentinel error for op on what (may be empty).
func (d Dialect) fail(op, what string, sentinel error) error {
	if what != "" {
		op += " " + what
	}
	return d.errorf("%s: %w", op, sentinel)
}

// chain makes one statement, or one call, of several writes whose
// placeholders are numbered across all of them in order: one round trip.
func (d Dialect) chain(stmts ...string) string {
	if !d.WritableCTE {
		return strings.Join(stmts, ";\n")
	}
	var b strings.Builder
	for i, s := range stmts[:len(stmts)-1] {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s)", i, s)
	}
	b.WriteString("\n" + stmts[len(stmts)-1])
	return b.String()
}

func (d Dialect) connLost(err error) bool  { return d.ConnLost != nil && d.ConnLost(err) }
func (d Dialect) retryable(err error) bool { return d.Retryable != nil && d.Retryable(err) }
