package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

var benchBase = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// seed opens a store holding n live sessions, each with its first refresh
// token hashed as storetest.BenchHash(sid, 0), and returns their ids. They
// are written in one transaction through prepared statements on one
// connection with a large page cache: a million take well under a minute
// instead of a million fsyncs.
func seed(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	ctx := context.Background()
	s, _ := openTemp(b)
	start := time.Now()
	conn, err := s.db.Connx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, `PRAGMA cache_size = -524288`); err != nil { // 512 MiB, this connection only
		b.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, `PRAGMA cache_size = -2000`) }() // back to the default
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	created, expires := sqlstore.ToDB(benchBase), sqlstore.ToDB(benchBase.Add(720*time.Hour))
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, created_at) VALUES ('u', 'bench', ?)`, created); err != nil {
		b.Fatal(err)
	}
	insSession, err := tx.PreparexContext(ctx, `INSERT INTO sessions (`+sqlstore.SessionColumns+`)
		VALUES (?1, 'u', ?2, ?2, ?3, ?2, ?2, NULL, '', '', '', ?4, '', NULL)`)
	if err != nil {
		b.Fatal(err)
	}
	insToken, err := tx.PreparexContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	sids := make([]string, n)
	for i := range sids {
		sid := fmt.Sprintf("session-%07d", i)
		h := storetest.BenchHash(sid, 0)
		if _, err := insSession.ExecContext(ctx, sid, created, expires, h); err != nil {
			b.Fatal(err)
		}
		if _, err := insToken.ExecContext(ctx, h, sid, created); err != nil {
			b.Fatal(err)
		}
		sids[i] = sid
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// The seed is one transaction of hundreds of MB in the WAL: copy it
	// into the file now, so the benchmark measures rotations, not the
	// background checkpoint of its own setup.
	var busy, logged, copied int
	if err := conn.QueryRowxContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied); err != nil || busy != 0 {
		b.Fatalf("checkpoint after seeding: %v (busy %d, %d of %d frames)", err, busy, copied, logged)
	}
	b.Logf("seeded %d sessions in %v", n, time.Since(start).Round(time.Millisecond))
	return s, sids
}

// BenchmarkRotateRefresh rotates tokens of 10k seeded sessions, each rotation
// a durable (synchronous=FULL) BEGIN IMMEDIATE transaction.
func BenchmarkRotateRefresh(b *testing.B) {
	storetest.BenchRotate(b, benchBase, func(b *testing.B) (store.Store, []string) {
		return seed(b, storetest.BenchSessions)
	})
}
