// Package sqlstore implements store.Store once for every SQL database: the
// queries, rows and transactions, with a small Dialect for what differs.
//
// The refresh path ends here: issuer/server/refresh.go's rotate calls
// RotateRefresh (rotate.go), which reads the token, session, user, methods
// and groups in one query (Queries.RotationState in queries.go), lets
// store.RotateRequest.Decide (issuer/store/rotation.go) choose, and writes
// once (Queries.Rotate: successor, supersession, pruning, session) inside
// the transaction Store.inTx runs (store.go). The backends (sqlite,
// postgres) only open the database and fill in a Dialect (dialect.go).
package sqlstore

import (
	"database/sql"
	"time"
)

// Times are stored as Unix microseconds in UTC: the precision PostgreSQL's
// timestamptz keeps, so every backend rounds alike, and the zero time.Time
// survives the round trip.

// ToDB is t as stored.
func ToDB(t time.Time) int64 { return t.UnixMicro() }

// FromDB is the time a stored value stands for, in UTC.
func FromDB(v int64) time.Time { return time.UnixMicro(v).UTC() }

// ToNullDB is t as stored, NULL when t is nil. Both drivers take
// sql.NullInt64 as an argument and scan a NULL BIGINT into it.
func ToNullDB(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ToDB(*t), Valid: true}
}

// FromNullDB is the time a nullable stored value stands for, nil for NULL.
func FromNullDB(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := FromDB(v.Int64)
	return &t
}

// Trunc rounds t down to the stored precision, so that values returned from
// a write equal what a later read returns.
func Trunc(t time.Time) time.Time { return FromDB(ToDB(t)) }

// Latest is the later of a and b. Clocks of several instances may disagree,
// so a recorded time is only ever moved forward.
func Latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
