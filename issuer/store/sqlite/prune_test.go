package sqlite

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

// TestPruneKeepsExactlyTheNewest: after every rotation a session holds its
// current token and exactly the store.KeptAncestors newest superseded ones,
// newest by (created_at, hash), the rule pruneAncestors writes in SQL for
// the other dialects; rotations share a time three at a time, so ties on
// created_at are broken by the hash. Both commit paths.
func TestPruneKeepsExactlyTheNewest(t *testing.T) {
	for _, each := range []bool{false, true} {
		t.Run(fmt.Sprintf("each=%v", each), func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "canopy.db"), Options{CommitEach: each})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			ctx := t.Context()
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := s.CreateUser(ctx, store.User{ID: "u1", Username: "alice", CreatedAt: base}); err != nil {
				t.Fatal(err)
			}
			sess := store.Session{ID: "s1", UserID: "u1", CreatedAt: base, AuthTime: base, ExpiresAt: base.Add(720 * time.Hour),
				LastUsedAt: base, AccessUntil: base.Add(5 * time.Minute)}
			if err := s.CreateSession(ctx, sess, storetest.BenchHash("s1", 0)); err != nil {
				t.Fatal(err)
			}
			type token struct {
				hash string
				at   time.Time
			}
			var superseded []token                               // the model: what must remain
			created := token{storetest.BenchHash("s1", 0), base} // the current token
			for i := range 3*store.KeptAncestors + 7 {
				now := base.Add(time.Duration(1+i/3) * time.Second)
				_, err := s.RotateRefresh(ctx, store.RotateRequest{PresentedHash: storetest.BenchHash("s1", i),
					SuccessorHash: storetest.BenchHash("s1", i+1), Now: now, Grace: 30 * time.Second,
					IdleTTL: time.Hour, AccessExpiry: now.Add(5 * time.Minute)})
				if err != nil {
					t.Fatalf("rotation %d: %v", i, err)
				}
				superseded = append(superseded, created)
				created = token{storetest.BenchHash("s1", i+1), now}
				slices.SortFunc(superseded, func(a, b token) int {
					return cmp.Or(b.at.Compare(a.at), strings.Compare(b.hash, a.hash))
				})
				superseded = superseded[:min(len(superseded), store.KeptAncestors)]
				want := []string{storetest.BenchHash("s1", i+1)}
				for _, tk := range superseded {
					want = append(want, tk.hash)
				}
				slices.Sort(want)
				var got []string
				if err := s.db.SelectContext(ctx, &got, `SELECT hash FROM refresh_tokens WHERE session_id = 's1' ORDER BY hash`); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("after rotation %d: %d tokens kept, want %d: %v, want %v", i, len(got), len(want), got, want)
				}
			}
		})
	}
}
