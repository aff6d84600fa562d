package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// logView is a logged revocation without its position, for comparison.
func logView(l store.LoggedRevocation) string {
	if l.SID != "" {
		return fmt.Sprintf("sid=%s until=%s", l.SID, ts(l.Until))
	}
	return fmt.Sprintf("user=%s before=%s except=%q until=%s", l.UserID, ts(l.Before), l.ExceptSID, ts(l.Until))
}

// readLog reads the whole log after `after` in pages of `page`, checking
// that positions only grow.
func readLog(t *testing.T, s store.Store, after int64, page int) ([]store.LoggedRevocation, int64) {
	t.Helper()
	var all []store.LoggedRevocation
	for {
		got, err := s.RevocationsAfter(t.Context(), after, page)
		if err != nil {
			t.Fatalf("RevocationsAfter(%d): %v", after, err)
		}
		for _, l := range got {
			if l.Pos <= after {
				t.Fatalf("position %d after %d: not increasing", l.Pos, after)
			}
			after = l.Pos
		}
		all = append(all, got...)
		if len(got) < page {
			return all, after
		}
	}
}

// testRevocationLog: every revocation is logged once, in commit order, with
// the entry the feed publishes; reads after a cursor see only what is new;
// the head is the last position.
func testRevocationLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	if head, err := s.RevocationHead(ctx); err != nil || head != 0 {
		t.Fatalf("empty log: head %d, %v; want 0", head, err)
	}
	if got, err := s.RevocationsAfter(ctx, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v, %v", got, err)
	}
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	for i := range 5 {
		mustSession(t, s, newSession(alice.ID, fmt.Sprintf("a-%d", i), base))
	}
	mustSession(t, s, newSession(alice.ID, "a-keep", base))
	mustSession(t, s, newSession(alice.ID, "a-same-second", base.Add(2*time.Minute+100*time.Millisecond)))
	mustSession(t, s, newSession(bob.ID, "b-1", base))
	mustSession(t, s, newSession(bob.ID, "b-reuse", base))

	at := base.Add(time.Minute)
	if err := s.RevokeSession(ctx, "a-0", store.ReasonLogout, at); err != nil {
		t.Fatal(err)
	}
	// A second revocation of the same session changes nothing and logs nothing.
	if err := s.RevokeSession(ctx, "a-0", store.ReasonLogout, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, cursor := readLog(t, s, 0, 100)
	change := base.Add(2*time.Minute + 500*time.Millisecond)
	if err := s.SetPassword(ctx, alice.ID, "new-hash", "a-keep", change); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "b-1", store.ReasonSignOutOne, change); err != nil {
		t.Fatal(err)
	}
	// Refresh-token reuse revokes, and is logged like any revocation.
	mustRotate(t, s, rotateReq("b-reuse", 0, 1, base.Add(time.Minute)), store.Rotated)
	if _, err := s.RotateRefresh(ctx, rotateReq("b-reuse", 0, 1, change.Add(2*time.Minute))); err == nil {
		t.Fatal("reuse after the grace was accepted")
	}

	all, head := readLog(t, s, 0, 2) // pages of two: the page boundary is exact
	want := []string{
		"sid=a-0 until=" + ts(base.Add(accessTTL)),
		fmt.Sprintf("user=%s before=%s except=%q until=%s", alice.ID, ts(base.Add(2*time.Minute)), "a-keep",
			ts(base.Add(2*time.Minute+100*time.Millisecond+accessTTL))),
		"sid=a-same-second until=" + ts(base.Add(2*time.Minute+100*time.Millisecond+accessTTL)),
		"sid=b-1 until=" + ts(base.Add(accessTTL)),
		"sid=b-reuse until=" + ts(base.Add(time.Minute+accessTTL)),
	}
	got := make([]string, len(all))
	for i, l := range all {
		got[i] = logView(l)
	}
	if !slices.Equal(got, want) {
		t.Errorf("log:\n got %q\nwant %q", got, want)
	}
	if h, err := s.RevocationHead(ctx); err != nil || h != head {
		t.Errorf("head %d, %v; want %d (the last position read)", h, err, head)
	}
	after, _ := readLog(t, s, cursor, 100)
	if len(after) != len(want)-1 || logView(after[0]) != want[1] {
		t.Errorf("read after the first entry's cursor: %d entries starting %v; want the %d later ones", len(after), after, len(want)-1)
	}
	if rest, _ := readLog(t, s, head, 100); len(rest) != 0 {
		t.Errorf("read after the head: %v, want nothing", rest)
	}
}
