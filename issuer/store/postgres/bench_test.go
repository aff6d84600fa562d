package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

// seedSessions opens a store on a fresh database holding
// storetest.BenchSessions sessions, their first tokens hashed as
// storetest.BenchHash does, written in two statements, and returns their ids.
func seedSessions(b *testing.B, base time.Time) (*Store, []string) {
	b.Helper()
	s, _ := openTemp(b)
	ctx := b.Context()
	err := seed(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, created_at) VALUES ('u', 'bench', $1)`, sqlstore.ToDB(base)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sqlstore.SessionColumns+`)
			SELECT sid, 'u', $1, $1, $2, $1, $1, NULL, '', '', '',
				encode(sha256(convert_to(sid || '/0', 'UTF8')), 'hex'), '', NULL
			FROM (SELECT format('session-%s', lpad(i::text, 5, '0')) AS sid FROM generate_series(0, $3 - 1) AS i) AS g`,
			sqlstore.ToDB(base), sqlstore.ToDB(base.Add(720*time.Hour)), storetest.BenchSessions); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at)
			SELECT current_hash, id, created_at FROM sessions`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	sids := make([]string, storetest.BenchSessions)
	for i := range sids {
		sids[i] = fmt.Sprintf("session-%05d", i)
	}
	return s, sids
}

// seed runs fn in one transaction and commits.
func seed(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkRotateRefresh rotates tokens of 10k seeded sessions, each rotation
// a durable (synchronous_commit=on, fsync=on) transaction with its row lock,
// over TCP on loopback to a local server.
func BenchmarkRotateRefresh(b *testing.B) {
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	storetest.BenchRotate(b, base, func(b *testing.B) (store.Store, []string) {
		return seedSessions(b, base)
	})
}
