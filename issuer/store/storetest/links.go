package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// testLinkedSessions: a session linked to a root (another root domain's
// session, store.LinkedSessionID) ends with its root, in the feed and the
// log too; ending it alone leaves the root; none is created under an ended
// root or another user's.
func testLinkedSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	root := mustSession(t, s, newSession(alice.ID, "root", base))
	other := mustSession(t, s, newSession(alice.ID, "rootx", base)) // "root" is its prefix, without the separator
	l1 := mustSession(t, s, newSession(alice.ID, store.LinkedSessionID(root.ID, "tagA"), base.Add(time.Second)))
	l2 := mustSession(t, s, newSession(alice.ID, store.LinkedSessionID(root.ID, "tagB"), base.Add(time.Second)))
	if store.RootSessionID(l1.ID) != root.ID || store.SessionDomainTag(l1.ID) != "tagA" || store.SessionDomainTag(root.ID) != "" {
		t.Fatalf("linked id %q: root %q, tag %q", l1.ID, store.RootSessionID(l1.ID), store.SessionDomainTag(l1.ID))
	}
	// Another user's root, and a link under a root of another user.
	bobs := mustSession(t, s, newSession(bob.ID, "bobroot", base))
	err := s.CreateSession(ctx, newSession(bob.ID, store.LinkedSessionID(root.ID, "tagA"), base), hash("bob-link"))
	wantErr(t, "link under another user's root", err, store.ErrSessionEnded)
	err = s.CreateSession(ctx, newSession(alice.ID, store.LinkedSessionID("missing", "tagA"), base), hash("orphan"))
	wantErr(t, "link under a missing root", err, store.ErrSessionEnded)

	// Ending a linked session alone leaves its root and siblings.
	t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute)
	if err := s.RevokeSession(ctx, l2.ID, store.ReasonSignOutOne, t1); err != nil {
		t.Fatal(err)
	}
	checkSession(t, "root after its link ended", mustGetSession(t, s, root.ID), root)
	checkSession(t, "sibling", mustGetSession(t, s, l1.ID), l1)

	_, cursor := readLog(t, s, 0, 100)
	if err := s.RevokeSession(ctx, root.ID, store.ReasonLogout, t2); err != nil {
		t.Fatal(err)
	}
	checkSession(t, "root", mustGetSession(t, s, root.ID), revoked(root, t2, store.ReasonLogout))
	checkSession(t, "linked", mustGetSession(t, s, l1.ID), revoked(l1, t2, store.ReasonLogout))
	checkSession(t, "already ended link keeps its reason", mustGetSession(t, s, l2.ID), revoked(l2, t1, store.ReasonSignOutOne))
	checkSession(t, "a root whose id begins with the same letters", mustGetSession(t, s, other.ID), other)
	checkSession(t, "another user's", mustGetSession(t, s, bobs.ID), bobs)

	logged, _ := readLog(t, s, cursor, 100)
	var sids []string
	for _, l := range logged {
		sids = append(sids, l.SID)
	}
	slices.Sort(sids)
	if want := []string{root.ID, l1.ID}; !slices.Equal(sids, sortedCopy(want)) {
		t.Fatalf("log after the root's revocation: %v, want %v", sids, want)
	}
	feed, err := s.RevokedSince(ctx, t2.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var fed []string
	for _, r := range feed {
		fed = append(fed, r.SID)
	}
	for _, want := range []string{root.ID, l1.ID, l2.ID} {
		if !slices.Contains(fed, want) {
			t.Errorf("feed %v lacks %s", fed, want)
		}
	}
	err = s.CreateSession(ctx, newSession(alice.ID, store.LinkedSessionID(root.ID, "tagA"), t2), hash("late"))
	wantErr(t, "link under an ended root", err, store.ErrSessionEnded)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
