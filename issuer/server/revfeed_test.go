package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// insertSessions adds n live sessions of userID straight into the database,
// in one transaction: 200k through the store would take minutes.
func insertSessions(t *testing.T, h *harness, userID string, n int, at time.Time) {
	t.Helper()
	db, err := sql.Open("sqlite3", h.cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO sessions (id, user_id, created_at, auth_time, expires_at, last_used_at, access_until, current_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	us := at.UnixMicro()
	for i := range n {
		sid := fmt.Sprintf("bulk-%07d", i)
		if _, err := st.Exec(sid, userID, us, us, us+int64(time.Hour/time.Microsecond), us,
			us+int64(5*time.Minute/time.Microsecond), "hash-"+sid); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func getFeed[F any](t *testing.T, h *harness, path string) (F, *response) {
	t.Helper()
	var f F
	r := h.browser().get(path)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, r.StatusCode)
	}
	if err := json.Unmarshal([]byte(r.body), &f); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return f, r
}

// TestRevocationFeedUserLevel (red-team 6): signing out 200,000 other
// sessions at once is one entry of the second feed, sparing the session
// that asked; the first feed keeps listing every session for relying
// services deployed before.
func TestRevocationFeedUserLevel(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 200k sessions")
	}
	const n = 200_000
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	insertSessions(t, h, alice.ID, n, h.clock.Now())
	h.clock.Advance(2 * time.Second)
	// The account page's "sign out other sessions".
	if err := h.srv.store.RevokeUserSessions(t.Context(), alice.ID, b.sid(), store.ReasonSignOutOthers, h.clock.Now()); err != nil {
		t.Fatal(err)
	}

	feed, r := getFeed[wire.RevocationFeed](t, h, wire.PathRevocationV2)
	want := wire.Revocation{Subject: alice.ID, Claim: wire.ClaimIssuedAt, Before: h.clock.Now().Unix(),
		ExceptSID: b.sid(), Until: h.clock.Now().Add(-2*time.Second + 5*time.Minute).Unix()}
	if len(feed.Revocations) != 1 || feed.Revocations[0] != want || feed.Overflow {
		t.Errorf("second feed = %+v (%d bytes), want exactly %+v", feed, len(r.body), want)
	}
	old, r := getFeed[wire.RevokedFeed](t, h, wire.PathRevocation)
	if len(old.Revoked) != n {
		t.Errorf("first feed lists %d sessions (%d bytes), want %d", len(old.Revoked), len(r.body), n)
	}
}

// countingStore counts the queries that build the revocation feeds.
type countingStore struct {
	store.Store
	queries atomic.Int64
}

func (c *countingStore) RevokedSince(ctx context.Context, since time.Time) ([]store.Revoked, error) {
	c.queries.Add(1)
	return c.Store.RevokedSince(ctx, since)
}

func (c *countingStore) RevocationsSince(ctx context.Context, since time.Time) ([]store.Revoked, []store.UserRevocation, error) {
	c.queries.Add(1)
	return c.Store.RevocationsSince(ctx, since)
}

// TestRevocationFeedCached (red-team 6): polls, 304 or 200, are served from
// memory; a revocation this instance commits is in the very next poll; one
// committed elsewhere within feedTTL.
func TestRevocationFeedCached(t *testing.T) {
	var cs *countingStore
	h := newHarness(t, options{wrapStore: func(s store.Store) store.Store {
		cs = &countingStore{Store: s}
		return cs
	}})
	h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	for _, path := range []string{wire.PathRevocation, wire.PathRevocationV2} {
		t.Run(path, func(t *testing.T) {
			h.clock.Advance(feedTTL)
			start := cs.queries.Load()
			_, r := getFeed[map[string]any](t, h, path)
			for range 5 {
				conditional(t, h.browser(), path, r)
				getFeed[map[string]any](t, h, path)
			}
			if got := cs.queries.Load() - start; got != 1 {
				t.Errorf("11 polls ran %d feed queries, want 1", got)
			}
			// Another instance's commit: seen once feedTTL has passed.
			h.clock.Advance(feedTTL)
			getFeed[map[string]any](t, h, path)
			if got := cs.queries.Load() - start; got != 2 {
				t.Errorf("after feedTTL: %d queries, want 2", got)
			}
		})
	}
	sid := b.sid()
	if r := b.post("/logout", url.Values{"csrf_token": {b.token()}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", r.StatusCode)
	}
	feed, _ := getFeed[wire.RevocationFeed](t, h, wire.PathRevocationV2)
	if len(feed.Revocations) != 1 || feed.Revocations[0].SID != sid {
		t.Errorf("right after logout, the feed is %+v; want %s at once (no wait for feedTTL)", feed, sid)
	}
}

// TestCapFeed: over the cap a user's entries merge (revoking more, never
// less); still over it, the newest are kept and the feed says Overflow.
func TestCapFeed(t *testing.T) {
	u := func(sub string, before, until int64, except string) wire.Revocation {
		return wire.Revocation{Subject: sub, Claim: wire.ClaimIssuedAt, Before: before, Until: until, ExceptSID: except}
	}
	s := func(sid string, until int64) wire.Revocation { return wire.Revocation{SID: sid, Until: until} }
	for _, tc := range []struct {
		name string
		in   []wire.Revocation
		cap  int
		want wire.RevocationFeed
	}{
		{"under the cap", []wire.Revocation{u("a", 10, 20, "x"), s("s1", 30)}, 2,
			wire.RevocationFeed{Revocations: []wire.Revocation{u("a", 10, 20, "x"), s("s1", 30)}}},
		{"merged per user, exceptions dropped", []wire.Revocation{u("a", 10, 20, "x"), u("a", 15, 18, "y"), u("b", 5, 9, "z"), s("s1", 30)}, 3,
			wire.RevocationFeed{Revocations: []wire.Revocation{u("a", 15, 20, ""), u("b", 5, 9, ""), s("s1", 30)}}},
		{"overflow keeps the latest until", []wire.Revocation{u("a", 10, 20, ""), u("b", 5, 9, ""), s("s1", 30), s("s2", 8)}, 2,
			wire.RevocationFeed{Revocations: []wire.Revocation{u("a", 10, 20, ""), s("s1", 30)}, Overflow: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := capFeed(tc.in, tc.cap)
			a, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(a) != string(w) {
				t.Errorf("capFeed =\n %s\nwant\n %s", a, w)
			}
		})
	}
}
