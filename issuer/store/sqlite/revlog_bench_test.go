package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
)

// BenchmarkRevocationPoll compares what one poll of the revocation feed
// costs the database with n revocations in the window: the whole window
// (RevocationsSince, the feed without a cursor) against an incremental read
// with nothing new (RevocationsAfter the head). The second must not grow
// with n: compare its 1k and 10k figures.
func BenchmarkRevocationPoll(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"10k", 10_000}} {
		s, _ := seed(b, n.n)
		ctx := context.Background()
		// Every session revoked (and logged) as a logout would: one
		// statement each for speed, the rows those logouts write.
		now := benchBase.Add(time.Minute)
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = 'logout', access_until = ?`,
			sqlstore.ToDB(now), sqlstore.ToDB(now.Add(5*time.Minute))); err != nil {
			b.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO revocation_log (sid, until_at, created_at)
			SELECT id, access_until, ? FROM sessions ORDER BY id`, sqlstore.ToDB(now)); err != nil {
			b.Fatal(err)
		}
		head, err := s.RevocationHead(ctx)
		if err != nil || head != int64(n.n) {
			b.Fatalf("head %d, %v; want %d", head, err, n.n)
		}
		since := now.Add(-10 * time.Minute)
		b.Run("window="+n.name+"/full", func(b *testing.B) {
			for b.Loop() {
				if sessions, _, err := s.RevocationsSince(ctx, since); err != nil || len(sessions) != n.n {
					b.Fatalf("%d, %v", len(sessions), err)
				}
			}
		})
		b.Run("window="+n.name+"/incremental-empty", func(b *testing.B) {
			for b.Loop() {
				if list, err := s.RevocationsAfter(ctx, head, 1000); err != nil || len(list) != 0 {
					b.Fatalf("%d, %v", len(list), err)
				}
			}
		})
	}
}
