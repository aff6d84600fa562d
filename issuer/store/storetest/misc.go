package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/canopy-sso/canopy/issuer/store"
)

func testRevokedSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	since := base.Add(time.Hour)
	add := func(sid string, accessUntil time.Time, revoke bool) {
		sess := newSession(alice.ID, sid, base)
		sess.AccessUntil = accessUntil
		mustSession(t, s, sess)
		if revoke {
			if err := s.RevokeSession(ctx, sid, store.ReasonLogout, base.Add(30*time.Minute)); err != nil {
				t.Fatalf("RevokeSession(%s): %v", sid, err)
			}
		}
	}
	add("live", since.Add(time.Hour), false)
	add("revoked-fresh", since.Add(time.Hour), true)
	add("revoked-just-after", since.Add(time.Second), true)
	add("revoked-at-since", since, true)
	add("revoked-old", base.Add(30*time.Minute), true)
	// A token minted by a rotation raises the session's horizon: the feed must
	// cover the latest exp of any access token issued in it.
	add("rotated", base.Add(accessTTL), false)
	r := rotateReq("rotated", 0, 1, since.Add(time.Minute))
	mustRotate(t, s, r, store.Rotated)
	if err := s.RevokeSession(ctx, "rotated", store.ReasonSignOutOne, since.Add(2*time.Minute)); err != nil {
		t.Fatalf("RevokeSession(rotated): %v", err)
	}

	got, err := s.RevokedSince(ctx, since)
	if err != nil {
		t.Fatalf("RevokedSince: %v", err)
	}
	slices.SortFunc(got, func(a, b store.Revoked) int { return cmp.Compare(a.SID, b.SID) })
	want := []store.Revoked{
		{SID: "revoked-fresh", Until: since.Add(time.Hour)},
		{SID: "revoked-just-after", Until: since.Add(time.Second)},
		{SID: "rotated", Until: r.AccessExpiry},
	}
	if !slices.EqualFunc(got, want, func(a, b store.Revoked) bool { return a.SID == b.SID && a.Until.Equal(b.Until) }) {
		t.Errorf("RevokedSince(%v):\n got %v\nwant %v", since, got, want)
	}
}

func testSweep(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	before := base.Add(sessionTTL + 10*24*time.Hour)
	expired := []string{"expired-1", "expired-2", "expired-3"}
	for _, sid := range expired {
		mustSession(t, s, newSession(alice.ID, sid, base))
	}
	revokeAt := func(sid string, accessUntil time.Time) {
		sess := newSession(alice.ID, sid, before.Add(-2*time.Hour))
		sess.AccessUntil = accessUntil
		mustSession(t, s, sess)
		if err := s.RevokeSession(ctx, sid, store.ReasonLogout, before.Add(-time.Hour)); err != nil {
			t.Fatalf("RevokeSession(%s): %v", sid, err)
		}
	}
	revokedOld := []string{"revoked-1", "revoked-2"}
	for _, sid := range revokedOld {
		revokeAt(sid, before.Add(-55*time.Minute))
	}
	// Still in the revoked feed's window: it must stay.
	revokeAt("revoked-in-feed", before.Add(10*time.Minute))
	mustSession(t, s, newSession(alice.ID, "active", before.Add(-time.Hour)))

	if n, err := s.Sweep(ctx, before, 0); err != nil || n != 0 {
		t.Fatalf("Sweep(limit 0) = %d, %v; want 0", n, err)
	}
	var counts []int
	for range 4 {
		n, err := s.Sweep(ctx, before, 2)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		counts = append(counts, n)
	}
	if want := []int{2, 2, 1, 0}; !slices.Equal(counts, want) {
		t.Errorf("Sweep counts = %v, want %v (bounded by the limit)", counts, want)
	}
	for _, sid := range append(expired, revokedOld...) {
		_, err := s.Session(ctx, sid)
		wantErr(t, "Session(swept "+sid+")", err, store.ErrNotFound)
		// Its refresh tokens went with it.
		_, err = s.RotateRefresh(ctx, rotateReq(sid, 0, 1, before))
		wantErr(t, "RotateRefresh(swept "+sid+")", err, store.ErrNotFound)
	}
	mustGetSession(t, s, "revoked-in-feed")
	mustRotate(t, s, rotateReq("active", 0, 1, before), store.Rotated)
}

func testSecret(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	var (
		calls  atomic.Int32
		values = make([][]byte, n)
		errs   = make([]error, n)
	)
	Barrier(n, func(i int) {
		values[i], errs[i] = s.Secret(ctx, "refresh", func() ([]byte, error) {
			calls.Add(1)
			return fmt.Appendf(nil, "secret from %d", i), nil
		})
	})
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Secret in goroutine %d: %v", i, errs[i])
		}
		if !bytes.Equal(values[i], values[0]) {
			t.Fatalf("Secret: goroutine %d got %q, goroutine 0 got %q", i, values[i], values[0])
		}
	}
	if calls.Load() == 0 || !bytes.HasPrefix(values[0], []byte("secret from ")) {
		t.Fatalf("Secret = %q after %d generator calls; want a generated value", values[0], calls.Load())
	}

	failing := func() ([]byte, error) { return nil, errors.New("no entropy") }
	got, err := s.Secret(ctx, "refresh", failing)
	if err != nil || !bytes.Equal(got, values[0]) {
		t.Errorf("Secret once created = %q, %v; want %q without generating", got, err, values[0])
	}
	if _, err := s.Secret(ctx, "broken", failing); err == nil {
		t.Error("Secret with a failing generator succeeded")
	}
	other := func() ([]byte, error) { return []byte("other value"), nil }
	got, err = s.Secret(ctx, "broken", other)
	if err != nil || string(got) != "other value" {
		t.Errorf("Secret after a failed generation = %q, %v; want a fresh value", got, err)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := []store.Event{
		{At: base.Add(1 * time.Second), Kind: "login", UserID: "uid-alice", Username: "alice", SessionID: "s1", IP: "192.0.2.1", UserAgent: "UA 1", Detail: "password"},
		{At: base.Add(2 * time.Second), Kind: "login_failed", Username: "mallory", IP: "198.51.100.7", UserAgent: "UA 2"},
		{At: base.Add(3 * time.Second), Kind: "refresh_reuse", UserID: "uid-alice", Username: "alice", SessionID: "s1", IP: "203.0.113.9"},
		{At: base.Add(4 * time.Second), Kind: "logout", UserID: "uid-alice", Username: "alice", SessionID: "s2"},
		{At: base.Add(5 * time.Second), Kind: "login", UserID: "uid-bob", Username: "bob", SessionID: "s3"},
	}
	for _, e := range in {
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatalf("AddEvent(%s): %v", e.Kind, err)
		}
	}
	for _, tc := range []struct {
		name  string
		user  string
		limit int
		want  []int // indexes into in, newest first
	}{
		{"all", "", 0, []int{4, 3, 2, 1, 0}},
		{"all limited", "", 2, []int{4, 3}},
		{"one user", "uid-alice", 0, []int{3, 2, 0}},
		{"one user limited", "uid-alice", 2, []int{3, 2}},
		{"unknown user", "uid-nobody", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Events(ctx, tc.user, tc.limit)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Events returned %d events, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, g := range got {
				w := in[tc.want[i]]
				if g.ID == 0 || (i > 0 && g.ID >= got[i-1].ID) {
					t.Errorf("event %d: id %d not positive and decreasing", i, g.ID)
				}
				g.ID = 0
				if !g.At.Equal(w.At) {
					t.Errorf("event %d: at %v, want %v", i, g.At, w.At)
				}
				g.At = w.At
				if g != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// testSweepEvents: events older than the cutoff go, newer ones stay, and one
// call deletes no more than its limit.
func testSweepEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 7 {
		if err := s.AddEvent(ctx, store.Event{At: base.Add(time.Duration(i) * time.Hour), Kind: fmt.Sprintf("e%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := base.Add(4 * time.Hour) // e0..e3 are older
	for _, step := range []struct {
		limit, want int
	}{{0, 0}, {3, 3}, {3, 1}, {3, 0}} {
		n, err := s.SweepEvents(ctx, cutoff, step.limit)
		if err != nil || n != step.want {
			t.Fatalf("SweepEvents(limit %d) = %d, %v; want %d", step.limit, n, err, step.want)
		}
	}
	left, err := s.Events(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range left {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "e6 e5 e4" {
		t.Fatalf("events left after the sweep: %s, want e6 e5 e4", got)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// hostileText is user-supplied text as it reaches the store: a User-Agent
// with a byte that is not UTF-8, one cut in the middle of a character by a
// byte limit, NUL and other control characters. PostgreSQL refuses invalid
// UTF-8 and NUL in text columns where SQLite stores them, so every backend
// must store a cleaned form: valid UTF-8, no control characters, no longer
// than the column's limit, cut on a character boundary.
var hostileText = []struct{ name, in string }{
	{"invalid byte", "Mozilla/5.0 \xff(X11)"},
	{"cut mid-character", "Mozilla/5.0 caf\xc3"},
	{"overlong encoding", "Mozilla \xc0\xaf"},
	{"surrogate", "Mozilla \xed\xa0\x80"},
	{"NUL", "Mozilla/5.0\x00(X11)"},
	{"control characters", "Mozilla\r\nX-Injected: 1\x1b[31m\x7f\u0085"},
	{"long multibyte", strings.Repeat("é", 300) + "\xff"},
	{"only bad bytes", "\xff\xfe\x00"},
}

// testHostileText stores hostile text as an event's and a session's fields
// and reads it back cleaned.
func testHostileText(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	for i, tc := range hostileText {
		t.Run(tc.name, func(t *testing.T) {
			e := store.Event{At: base.Add(time.Duration(i) * time.Second), Kind: "login_failed", UserID: alice.ID,
				Username: tc.in, IP: tc.in, UserAgent: tc.in, Detail: "username " + tc.in}
			if err := s.AddEvent(ctx, e); err != nil {
				t.Fatalf("AddEvent: %v", err)
			}
			events, err := s.Events(ctx, alice.ID, 1)
			if err != nil || len(events) != 1 {
				t.Fatalf("Events = %d events, %v", len(events), err)
			}
			got := events[0]
			for field, v := range map[string]string{"Username": got.Username, "IP": got.IP, "UserAgent": got.UserAgent, "Detail": got.Detail} {
				checkClean(t, "event "+field, v)
			}
			sess := newSession(alice.ID, fmt.Sprintf("hostile-%d", i), base)
			sess.UserAgent, sess.IP = tc.in, tc.in
			mustSession(t, s, sess)
			stored := mustGetSession(t, s, sess.ID)
			checkClean(t, "session UserAgent", stored.UserAgent)
			checkClean(t, "session IP", stored.IP)
		})
	}
}

func checkClean(t *testing.T, what, v string) {
	t.Helper()
	if !utf8.ValidString(v) {
		t.Errorf("%s = %q: not valid UTF-8", what, v)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		t.Errorf("%s = %q: holds a control character", what, v)
	}
	if len(v) > store.MaxText {
		t.Errorf("%s is %d bytes, over %d", what, len(v), store.MaxText)
	}
}
