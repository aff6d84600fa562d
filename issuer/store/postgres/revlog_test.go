package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// waitLockWaiters waits until n backends of the test database wait on a lock.
func waitLockWaiters(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := s.db.GetContext(t.Context(), &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends wait on a lock, want %d", waiting, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRevocationLogOutOfOrder commits two revocations out of order through
// two instances: A's transaction starts first and writes first, but waits
// on a row lock while B's later one commits. A reader that read B's
// position then reads after it and must still find A's: positions follow
// commit order, not the order in which transactions began or wrote.
func TestRevocationLogOutOfOrder(t *testing.T) {
	a, dsn := openTemp(t)
	b := openDSN(t, dsn)
	ctx := t.Context()
	mustUser(t, a, "u1", "alice")
	mustUser(t, a, "u2", "bob")
	mustSession(t, a, "u1", "s1", "h1")
	mustSession(t, a, "u2", "s2", "h2")
	now := base.Add(10 * time.Second)

	// Hold s1's row, so A's transaction stops after its first write (the
	// user-level row) and before it marks the session revoked.
	holder, err := a.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback() }()
	if _, err := holder.ExecContext(ctx, `SELECT 1 FROM sessions WHERE id = 's1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { aDone <- a.RevokeUserSessions(ctx, "u1", "", store.ReasonUserDisabled, now) }()
	waitLockWaiters(t, a, 1)

	if err := b.RevokeSession(ctx, "s2", store.ReasonLogout, now); err != nil {
		t.Fatal(err)
	}
	first, err := b.RevocationsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].SID != "s2" {
		t.Fatalf("before A commits, the log is %+v; want B's s2 alone", first)
	}
	cursor := first[0].Pos

	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	next, err := a.RevocationsAfter(ctx, cursor, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next[0].UserID != "u1" {
		t.Fatalf("after A commits, reading after B's cursor gives %+v; want A's user-level entry (nothing missed)", next)
	}
}

// TestRevocationLogConcurrent revokes sessions from many goroutines through
// two instances while a reader follows the log by cursor: the reader ends
// up with every revocation, each once.
func TestRevocationLogConcurrent(t *testing.T) {
	const n = 40
	a, dsn := openTemp(t)
	b := openDSN(t, dsn)
	ctx := t.Context()
	mustUser(t, a, "u", "alice")
	for i := range n {
		mustSession(t, a, "u", fmt.Sprintf("s%02d", i), fmt.Sprintf("h%02d", i))
	}
	now := base.Add(10 * time.Second)
	seen := map[string]int{}
	var cursor int64
	read := func() {
		got, err := a.RevocationsAfter(ctx, cursor, 7)
		if err != nil {
			t.Error(err)
			return
		}
		for _, l := range got {
			seen[l.SID]++
			cursor = l.Pos
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				read()
			}
		}
	}()
	var writers sync.WaitGroup
	for i := range n {
		writers.Add(1)
		go func() {
			defer writers.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			if err := s.RevokeSession(ctx, fmt.Sprintf("s%02d", i), store.ReasonLogout, now); err != nil {
				t.Error(err)
			}
		}()
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	for range n {
		read()
	}
	for i := range n {
		if sid := fmt.Sprintf("s%02d", i); seen[sid] != 1 {
			t.Errorf("%s read %d times, want once", sid, seen[sid])
		}
	}
}
