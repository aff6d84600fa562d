package cli

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
)

// TestSweepOnceDrainsInBatches: more ended sessions than one batch are all
// deleted, live ones and recently ended ones are kept.
func TestSweepOnceDrainsInBatches(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Now()
	u := store.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: now.Add(-48 * time.Hour)}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-3 * time.Hour)
	mk := func(id string, expires time.Time) {
		sess := store.Session{ID: id, UserID: u.ID, CreatedAt: old.Add(-time.Hour), AuthTime: old.Add(-time.Hour),
			ExpiresAt: expires, LastUsedAt: old.Add(-time.Hour), AccessUntil: old.Add(-time.Hour)}
		if err := s.CreateSession(ctx, sess, "hash-"+id); err != nil {
			t.Fatal(err)
		}
	}
	const ended = sweepBatch + 150
	for i := range ended {
		mk(fmt.Sprintf("ended-%d", i), old)
	}
	mk("live", now.Add(time.Hour))
	n, err := sweepOnce(ctx, s, now.Add(-sweepKeep))
	if err != nil || n != ended {
		t.Fatalf("sweepOnce deleted %d (%v), want %d", n, err, ended)
	}
	if _, err := s.Session(ctx, "live"); err != nil {
		t.Fatalf("the live session was swept: %v", err)
	}
	if _, err := s.Session(ctx, "ended-7"); err == nil {
		t.Fatal("an ended session survived the sweep")
	}
	if n, err := sweepOnce(ctx, s, now.Add(-sweepKeep)); err != nil || n != 0 {
		t.Fatalf("a second sweep deleted %d (%v), want 0", n, err)
	}
}
