package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// The benchmark mirrors the SQLite backend's (issuer/store/sqlite/bench_test.go)
// so that `go test -bench RotateRefresh ./issuer/store/...` compares them.
const benchSessions = 10_000

// benchChain is one session's rotation chain; gen is the index of its
// current token.
type benchChain struct {
	mu  sync.Mutex
	sid string
	gen int
}

func benchHash(sid string, gen int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", sid, gen))
	return hex.EncodeToString(sum[:])
}

// seedSessions writes the sessions, and their first tokens hashed as
// benchHash does, in two statements.
func seedSessions(b *testing.B, s *Store, base time.Time) []*benchChain {
	b.Helper()
	ctx := b.Context()
	err := seed(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, created_at) VALUES ('u', 'bench', $1)`, sqlstore.ToDB(base)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sqlstore.SessionColumns+`)
			SELECT sid, 'u', $1, $1, $2, $1, $1, NULL, '', '', '',
				encode(sha256(convert_to(sid || '/0', 'UTF8')), 'hex'), '', NULL
			FROM (SELECT format('session-%s', lpad(i::text, 5, '0')) AS sid FROM generate_series(0, $3 - 1) AS i) AS g`,
			sqlstore.ToDB(base), sqlstore.ToDB(base.Add(720*time.Hour)), benchSessions); err != nil {
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
	chains := make([]*benchChain, benchSessions)
	for i := range chains {
		chains[i] = &benchChain{sid: fmt.Sprintf("session-%05d", i)}
	}
	return chains
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
	rotateNext := func(b *testing.B, s *Store, c *benchChain, now time.Time) {
		c.mu.Lock()
		defer c.mu.Unlock()
		res, err := s.RotateRefresh(b.Context(), store.RotateRequest{
			PresentedHash: benchHash(c.sid, c.gen),
			SuccessorHash: benchHash(c.sid, c.gen+1),
			Now:           now,
			Grace:         30 * time.Second,
			IdleTTL:       168 * time.Hour,
			AccessExpiry:  now.Add(5 * time.Minute),
		})
		if err != nil || res.Outcome != store.Rotated {
			b.Errorf("rotate %s#%d: %v, outcome %v", c.sid, c.gen, err, res.Outcome)
			return
		}
		c.gen++
	}
	report := func(b *testing.B) {
		b.ReportMetric(1, "rotations/op")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
	}

	b.Run("serial", func(b *testing.B) {
		s, _ := openTemp(b)
		chains := seedSessions(b, s, base)
		now := base.Add(time.Minute)
		b.ResetTimer()
		for i := range b.N {
			rotateNext(b, s, chains[i%benchSessions], now)
		}
		report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		s, _ := openTemp(b)
		chains := seedSessions(b, s, base)
		now := base.Add(time.Minute)
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rotateNext(b, s, chains[next.Add(1)%benchSessions], now)
			}
		})
		report(b)
	})
}
