package cli

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
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

// TestSweepEventsDrainsInBatches: audit events older than the retention are
// deleted, more than one batch of them, and newer ones are kept.
func TestSweepEventsDrainsInBatches(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Now()
	retention := config.DefaultEventRetention
	const old = sweepBatch + 150
	for i := range old + 3 {
		at := now.Add(-retention - time.Hour)
		if i >= old {
			at = now.Add(-time.Hour)
		}
		if err := s.AddEvent(ctx, store.Event{At: at, Kind: fmt.Sprintf("e%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := drain(ctx, s.SweepEvents, now.Add(-retention))
	if err != nil || n != old {
		t.Fatalf("drain deleted %d events (%v), want %d", n, err, old)
	}
	left, err := s.Events(ctx, "", 0)
	if err != nil || len(left) != 3 {
		t.Fatalf("%d events left (%v), want the 3 recent ones", len(left), err)
	}
}
