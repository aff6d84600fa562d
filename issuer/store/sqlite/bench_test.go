package sqlite

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

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

// seedSessions writes the sessions in one transaction: one fsync instead of
// ten thousand.
func seedSessions(b *testing.B, s *Store, base time.Time) []*benchChain {
	b.Helper()
	ctx := b.Context()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, created_at) VALUES ('u', 'bench', ?)`, sqlstore.ToDB(base)); err != nil {
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
	chains := make([]*benchChain, benchSessions)
	for i := range chains {
		c := &benchChain{sid: fmt.Sprintf("session-%05d", i)}
		h := benchHash(c.sid, 0)
		if _, err := insSession.ExecContext(ctx, c.sid, sqlstore.ToDB(base), sqlstore.ToDB(base.Add(720*time.Hour)), h); err != nil {
			b.Fatal(err)
		}
		if _, err := insToken.ExecContext(ctx, h, c.sid, sqlstore.ToDB(base)); err != nil {
			b.Fatal(err)
		}
		chains[i] = c
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return chains
}

// BenchmarkRotateRefresh rotates tokens of 10k seeded sessions, each rotation
// a durable (synchronous=FULL) BEGIN IMMEDIATE transaction.
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
