package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// BenchSessions is how many sessions BenchRotate's seed stores.
const BenchSessions = 10_000

// BenchHash is the SHA-256, in hex, of session sid's refresh token number gen
// in benchmarks; a seed stores BenchHash(sid, 0) as each session's first.
func BenchHash(sid string, gen int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", sid, gen))
	return hex.EncodeToString(sum[:])
}

// benchChain is one session's rotation chain; gen is the index of its
// current token.
type benchChain struct {
	mu  sync.Mutex
	sid string
	gen int
}

// BenchRotate rotates refresh tokens of seeded sessions, serially and 4 per
// CPU in parallel, each rotation one durable transaction, so that
// `go test -bench RotateRefresh ./issuer/store/...` compares the backends.
// seed returns a store holding BenchSessions live sessions of one user,
// created at base, with their first tokens hashed as BenchHash(sid, 0), and
// the sessions' ids.
func BenchRotate(b *testing.B, base time.Time, seed func(b *testing.B) (store.Store, []string)) {
	now := base.Add(time.Minute)
	rotateNext := func(b *testing.B, s store.Store, c *benchChain) {
		c.mu.Lock()
		defer c.mu.Unlock()
		res, err := s.RotateRefresh(b.Context(), store.RotateRequest{
			PresentedHash: BenchHash(c.sid, c.gen),
			SuccessorHash: BenchHash(c.sid, c.gen+1),
			Now:           now,
			Grace:         grace,
			IdleTTL:       idleTTL,
			AccessExpiry:  now.Add(accessTTL),
		})
		if err != nil || res.Outcome != store.Rotated {
			b.Errorf("rotate %s#%d: %v, outcome %v", c.sid, c.gen, err, res.Outcome)
			return
		}
		c.gen++
	}
	setUp := func(b *testing.B) (store.Store, []*benchChain) {
		s, sids := seed(b)
		chains := make([]*benchChain, len(sids))
		for i, sid := range sids {
			chains[i] = &benchChain{sid: sid}
		}
		return s, chains
	}
	report := func(b *testing.B) {
		b.ReportMetric(1, "rotations/op")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
	}

	b.Run("serial", func(b *testing.B) {
		s, chains := setUp(b)
		b.ResetTimer()
		for i := range b.N {
			rotateNext(b, s, chains[i%len(chains)])
		}
		report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		s, chains := setUp(b)
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rotateNext(b, s, chains[next.Add(1)%int64(len(chains))])
			}
		})
		report(b)
	})
}
