package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

func testRotateRotates(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1, t2, t3 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)

	res := mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1), store.Rotated)
	want := sess
	want.LastUsedAt, want.AccessUntil = t1, t1.Add(accessTTL)
	checkSession(t, "result", res.Session, want)
	checkUser(t, "result user", res.User, alice)
	checkSession(t, "stored", mustGetSession(t, s, sess.ID), want)

	mustRotate(t, s, rotateReq(sess.ID, 1, 2, t2), store.Rotated)
	// AccessUntil is the latest exp ever issued: a shorter token never lowers it.
	r := rotateReq(sess.ID, 2, 3, t3)
	r.AccessExpiry = t1
	res = mustRotate(t, s, r, store.Rotated)
	want.LastUsedAt, want.AccessUntil = t3, t2.Add(accessTTL)
	checkSession(t, "after a shorter access token", res.Session, want)
	checkSession(t, "stored after a shorter access token", mustGetSession(t, s, sess.ID), want)
}

func testRotateConverges(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1 := base.Add(time.Minute)
	mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1), store.Rotated)

	// Two tabs, or a lost response: the predecessor converges on the same successor.
	res := mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1.Add(10*time.Second)), store.Converged)
	want := sess
	want.LastUsedAt, want.AccessUntil = t1.Add(10*time.Second), t1.Add(10*time.Second+accessTTL)
	checkSession(t, "converged result", res.Session, want)
	checkUser(t, "converged user", res.User, alice)
	checkSession(t, "converged stored", mustGetSession(t, s, sess.ID), want)
	// The grace is inclusive.
	mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1.Add(grace)), store.Converged)

	// Only one successor was recorded: it is current and rotates on.
	mustRotate(t, s, rotateReq(sess.ID, 1, 2, t1.Add(grace+time.Second)), store.Rotated)
	mustRotate(t, s, rotateReq(sess.ID, 2, 3, t1.Add(grace+2*time.Second)), store.Rotated)

	// The predecessor's predecessor is reuse, even inside the grace window.
	s2 := mustSession(t, s, newSession(alice.ID, "s2", base))
	mustRotate(t, s, rotateReq(s2.ID, 0, 1, t1), store.Rotated)
	mustRotate(t, s, rotateReq(s2.ID, 1, 2, t1.Add(time.Second)), store.Rotated)
	mustRotate(t, s, rotateReq(s2.ID, 1, 2, t1.Add(2*time.Second)), store.Converged)
	_, err := s.RotateRefresh(ctx, rotateReq(s2.ID, 0, 1, t1.Add(3*time.Second)))
	wantErr(t, "RotateRefresh(predecessor's predecessor)", err, store.ErrReuse)
}

func testRotateConvergeMismatch(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1 := base.Add(time.Minute)
	mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1), store.Rotated)

	// The caller derived another successor (its secret differs): an error,
	// but not reuse, so the user's session survives a misconfigured instance.
	r := rotateReq(sess.ID, 0, 1, t1.Add(time.Second))
	r.SuccessorHash = hash("derived with another secret")
	_, err := s.RotateRefresh(t.Context(), r)
	if err == nil {
		t.Fatal("RotateRefresh with a different successor succeeded")
	}
	for _, sentinel := range []error{store.ErrReuse, store.ErrSessionEnded, store.ErrNotFound} {
		if errors.Is(err, sentinel) {
			t.Fatalf("RotateRefresh with a different successor: %v, want a plain error", err)
		}
	}
	if got := mustGetSession(t, s, sess.ID); got.RevokedAt != nil {
		t.Errorf("session revoked on a successor mismatch: %+v", viewSession(got))
	}
	mustRotate(t, s, rotateReq(sess.ID, 1, 2, t1.Add(2*time.Second)), store.Rotated)
}

func testRotateReuseAfterGrace(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1 := base.Add(time.Minute)
	mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1), store.Rotated)

	late := t1.Add(grace + time.Second)
	res, err := s.RotateRefresh(ctx, rotateReq(sess.ID, 0, 1, late))
	wantErr(t, "RotateRefresh(predecessor after grace)", err, store.ErrReuse)
	// The caller needs to know whose session ended, for the audit log.
	if res.Session.ID != sess.ID || res.User.ID != alice.ID {
		t.Errorf("reuse result names session %q of user %q, want %q of %q", res.Session.ID, res.User.ID, sess.ID, alice.ID)
	}
	want := sess
	want.LastUsedAt, want.AccessUntil = t1, t1.Add(accessTTL)
	want = revoked(want, late, store.ReasonReuse)
	checkSession(t, "after reuse", mustGetSession(t, s, sess.ID), want)

	// The whole family is dead, the current token included.
	_, err = s.RotateRefresh(ctx, rotateReq(sess.ID, 1, 2, late.Add(time.Second)))
	wantErr(t, "RotateRefresh(current after reuse)", err, store.ErrSessionEnded)
	_, err = s.RotateRefresh(ctx, rotateReq(sess.ID, 0, 1, late.Add(2*time.Second)))
	wantErr(t, "RotateRefresh(reused again)", err, store.ErrSessionEnded)
	checkSession(t, "first revocation kept", mustGetSession(t, s, sess.ID), want)

	feed, err := s.RevokedSince(ctx, late)
	if err != nil {
		t.Fatalf("RevokedSince: %v", err)
	}
	if len(feed) != 1 || feed[0].SID != sess.ID || !feed[0].Until.Equal(t1.Add(accessTTL)) {
		t.Errorf("RevokedSince = %+v, want %s until %v", feed, sess.ID, t1.Add(accessTTL))
	}
}

func testRotateReuseAncestor(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1 := base.Add(time.Minute)
	mustRotate(t, s, rotateReq(sess.ID, 0, 1, t1), store.Rotated)
	mustRotate(t, s, rotateReq(sess.ID, 1, 2, t1.Add(time.Second)), store.Rotated)

	// A→B→C, then A inside the grace of both rotations: A is no longer the
	// immediate predecessor, so only a thief can be holding it.
	_, err := s.RotateRefresh(ctx, rotateReq(sess.ID, 0, 1, t1.Add(2*time.Second)))
	wantErr(t, "RotateRefresh(ancestor)", err, store.ErrReuse)
	got := mustGetSession(t, s, sess.ID)
	if got.RevokedAt == nil || got.RevokeReason != store.ReasonReuse {
		t.Fatalf("session after reuse = %+v, want revoked for %s", viewSession(got), store.ReasonReuse)
	}
	_, err = s.RotateRefresh(ctx, rotateReq(sess.ID, 2, 3, t1.Add(3*time.Second)))
	wantErr(t, "RotateRefresh(current after reuse)", err, store.ErrSessionEnded)
}

// testRotateKeepsRecentAncestors: a session rotated far more often than
// store.KeptAncestors keeps recognising its recent ancestors as reuse, while
// its oldest ones have been pruned and are unknown: what it keeps is bounded.
func testRotateKeepsRecentAncestors(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	n := 3 * store.KeptAncestors
	at := base
	for i := range n {
		at = at.Add(time.Second)
		mustRotate(t, s, rotateReq(sess.ID, i, i+1, at), store.Rotated)
	}
	// The first token and those that followed it, long superseded: unknown,
	// and presenting them ends nothing. After n rotations tokens 0..n-1 are
	// superseded and exactly the newest store.KeptAncestors of them kept.
	for _, old := range []int{0, 1, n - store.KeptAncestors - 1} {
		_, err := s.RotateRefresh(ctx, rotateReq(sess.ID, old, old+1, at.Add(2*time.Second)))
		wantErr(t, "RotateRefresh(pruned ancestor)", err, store.ErrNotFound)
	}
	if got := mustGetSession(t, s, sess.ID); got.RevokedAt != nil {
		t.Fatalf("a pruned ancestor revoked the session: %+v", viewSession(got))
	}
	// The oldest ancestor kept is still reuse.
	_, err := s.RotateRefresh(ctx, rotateReq(sess.ID, n-store.KeptAncestors, n-store.KeptAncestors+1, at.Add(2*time.Second)))
	wantErr(t, "RotateRefresh(recent ancestor)", err, store.ErrReuse)
	if got := mustGetSession(t, s, sess.ID); got.RevokedAt == nil || got.RevokeReason != store.ReasonReuse {
		t.Fatalf("session after reuse of a recent ancestor = %+v, want revoked", viewSession(got))
	}
}

func testRotateUnknown(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	_, err := s.RotateRefresh(t.Context(), rotateReq("nope", 0, 1, base.Add(time.Minute)))
	wantErr(t, "RotateRefresh(unknown)", err, store.ErrNotFound)
	checkSession(t, "unrelated session", mustGetSession(t, s, sess.ID), sess)
}

func testRotateEnded(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	for _, tc := range []struct {
		name    string
		now     time.Time
		idle    time.Duration
		revoke  bool
		wantErr error
	}{
		{"at expiry", base.Add(sessionTTL), idleTTL, false, store.ErrSessionEnded},
		{"after expiry", base.Add(sessionTTL + time.Hour), 0, false, store.ErrSessionEnded},
		{"idle", base.Add(idleTTL), idleTTL, false, store.ErrSessionEnded},
		{"just before idle", base.Add(idleTTL - time.Second), idleTTL, false, nil},
		{"idle limit off", base.Add(idleTTL), 0, false, nil},
		{"revoked", base.Add(time.Minute), idleTTL, true, store.ErrSessionEnded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := mustSession(t, s, newSession(alice.ID, "s-"+tc.name, base))
			if tc.revoke {
				if err := s.RevokeSession(ctx, sess.ID, store.ReasonLogout, base.Add(time.Second)); err != nil {
					t.Fatalf("RevokeSession: %v", err)
				}
			}
			before := mustGetSession(t, s, sess.ID)
			r := rotateReq(sess.ID, 0, 1, tc.now)
			r.IdleTTL = tc.idle
			_, err := s.RotateRefresh(ctx, r)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("RotateRefresh: %v", err)
				}
				return
			}
			wantErr(t, "RotateRefresh", err, tc.wantErr)
			// An ended session is reported, not written to.
			checkSession(t, "unchanged", mustGetSession(t, s, sess.ID), before)
		})
	}
}

// testRotateRace presents one token from many goroutines at once, as tabs
// and retries do: every one must succeed on the same successor, and exactly
// one of them may rotate.
func testRotateRace(t *testing.T, s store.Store) {
	const n = 50
	alice := mustUser(t, s, "alice")
	sess := mustSession(t, s, newSession(alice.ID, "s1", base))
	now := base.Add(time.Minute)

	var (
		results = make([]store.RotateResult, n)
		errs    = make([]error, n)
	)
	Barrier(n, func(i int) {
		results[i], errs[i] = s.RotateRefresh(t.Context(), rotateReq(sess.ID, 0, 1, now))
	})

	var rotated, converged int
	for i := range n {
		if errs[i] != nil {
			t.Errorf("goroutine %d: %v", i, errs[i])
			continue
		}
		switch results[i].Outcome {
		case store.Rotated:
			rotated++
		case store.Converged:
			converged++
		}
	}
	if rotated != 1 || converged != n-1 {
		t.Fatalf("rotated %d, converged %d; want 1 and %d", rotated, converged, n-1)
	}
	mustRotate(t, s, rotateReq(sess.ID, 1, 2, now.Add(time.Second)), store.Rotated)
}

// testRotateSuccessorCollision: a rotation that fails half-way (its successor
// is another session's token) leaves the session exactly as it was, and the
// token still rotates afterwards.
func testRotateSuccessorCollision(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	mustSession(t, s, newSession(alice.ID, "s1", base))
	mustSession(t, s, newSession(alice.ID, "s2", base))
	before := mustGetSession(t, s, "s1")
	now := base.Add(time.Minute)
	r := rotateReq("s1", 0, 1, now)
	r.SuccessorHash = hash(tok("s2", 0))
	if _, err := s.RotateRefresh(ctx, r); err == nil {
		t.Fatal("rotation onto another session's token succeeded")
	}
	after := mustGetSession(t, s, "s1")
	if !after.LastUsedAt.Equal(before.LastUsedAt) || !after.AccessUntil.Equal(before.AccessUntil) || after.RevokedAt != nil {
		t.Fatalf("session changed by a failed rotation: %+v, was %+v", after, before)
	}
	mustRotate(t, s, rotateReq("s1", 0, 1, now), store.Rotated)
}

// testRotateFacts: a rotation returns what the access token it mints says
// beyond the session row, read in its own transaction: the session's
// methods (nil when none were recorded) and the user's groups, sorted.
func testRotateFacts(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	for _, g := range []string{"ops", "admins", "b-team", "a_team"} {
		if err := s.AddGroup(ctx, alice.ID, g); err != nil {
			t.Fatalf("AddGroup(%q): %v", g, err)
		}
	}
	if err := s.AddGroup(ctx, bob.ID, "other"); err != nil {
		t.Fatalf("AddGroup: %v", err)
	}
	withAMR := mustSession(t, s, newSession(alice.ID, "s1", base))
	amr := []string{wire.AMRPassword, wire.AMROTP}
	if err := s.SetSessionAMR(ctx, withAMR.ID, amr); err != nil {
		t.Fatalf("SetSessionAMR: %v", err)
	}
	bare := mustSession(t, s, newSession(alice.ID, "s2", base))
	lonely := mustSession(t, s, newSession(mustUser(t, s, "carol").ID, "s3", base))
	t1 := base.Add(time.Minute)
	wantGroups := []string{"a_team", "admins", "b-team", "ops"}
	for _, tc := range []struct {
		name       string
		req        store.RotateRequest
		outcome    store.RotateOutcome
		amr, group []string
	}{
		{"rotated", rotateReq(withAMR.ID, 0, 1, t1), store.Rotated, amr, wantGroups},
		{"converged", rotateReq(withAMR.ID, 0, 1, t1.Add(time.Second)), store.Converged, amr, wantGroups},
		{"no methods recorded", rotateReq(bare.ID, 0, 1, t1), store.Rotated, nil, wantGroups},
		{"no groups", rotateReq(lonely.ID, 0, 1, t1), store.Rotated, nil, []string{}},
	} {
		res := mustRotate(t, s, tc.req, tc.outcome)
		if !slices.Equal(res.AMR, tc.amr) || (res.AMR == nil) != (tc.amr == nil) {
			t.Errorf("%s: AMR = %q, want %q", tc.name, res.AMR, tc.amr)
		}
		if !slices.Equal(res.Groups, tc.group) || res.Groups == nil {
			t.Errorf("%s: Groups = %q, want %q (never nil)", tc.name, res.Groups, tc.group)
		}
	}
}
