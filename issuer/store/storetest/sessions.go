package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func testSessionCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	s1 := newSession(alice.ID, "s1", base)
	s1.AuthTime = base.Add(-time.Minute) // a session may carry an earlier sign-in
	mustSession(t, s, s1)
	checkSession(t, "Session", mustGetSession(t, s, s1.ID), s1)

	err := s.CreateSession(ctx, newSession(alice.ID, "s1", base), hash("fresh token"))
	wantErr(t, "CreateSession(same id)", err, store.ErrConflict)
	err = s.CreateSession(ctx, newSession(alice.ID, "s2", base), hash(tok("s1", 0)))
	wantErr(t, "CreateSession(same token)", err, store.ErrConflict)
	// Nothing half-written: the failed session is not there either.
	_, err = s.Session(ctx, "s2")
	wantErr(t, "Session after a failed create", err, store.ErrNotFound)

	// The refresh token leads to its session, before and after a rotation.
	if got, err := s.SessionByRefresh(ctx, hash(tok("s1", 0))); err != nil || got.ID != "s1" {
		t.Fatalf("SessionByRefresh(first token) = %q, %v", got.ID, err)
	}
	mustRotate(t, s, rotateReq("s1", 0, 1, base.Add(time.Second)), store.Rotated)
	for _, n := range []int{0, 1} {
		if got, err := s.SessionByRefresh(ctx, hash(tok("s1", n))); err != nil || got.ID != "s1" {
			t.Fatalf("SessionByRefresh(token %d) = %q, %v", n, got.ID, err)
		}
	}
	_, err = s.SessionByRefresh(ctx, hash("never issued"))
	wantErr(t, "SessionByRefresh(unknown)", err, store.ErrNotFound)

	err = s.CreateSession(ctx, newSession("uid-nobody", "s3", base), hash(tok("s3", 0)))
	wantErr(t, "CreateSession(unknown user)", err, store.ErrNotFound)
	_, err = s.Session(ctx, "nope")
	wantErr(t, "Session(unknown)", err, store.ErrNotFound)
}

func testSessionList(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	now := base.Add(10 * 24 * time.Hour)
	used := func(sid string, created, lastUse time.Time) store.Session {
		sess := newSession(alice.ID, sid, created)
		sess.LastUsedAt = lastUse
		return mustSession(t, s, sess)
	}
	used("recent", base, now.Add(-time.Hour))
	used("older", base, now.Add(-2*time.Hour))
	used("almost-idle", base, now.Add(-idleTTL+time.Second))
	used("idle", base, now.Add(-idleTTL))
	used("expired", now.Add(-sessionTTL), now.Add(-time.Minute))
	used("revoked", base, now.Add(-time.Minute))
	if err := s.RevokeSession(ctx, "revoked", store.ReasonLogout, now.Add(-time.Second)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	bobs := newSession(bob.ID, "bobs", base)
	bobs.LastUsedAt = now.Add(-time.Hour)
	mustSession(t, s, bobs)

	for _, tc := range []struct {
		name string
		user string
		idle time.Duration
		want []string
	}{
		{"idle applied", alice.ID, idleTTL, []string{"recent", "older", "almost-idle"}},
		{"no idle limit", alice.ID, 0, []string{"recent", "older", "almost-idle", "idle"}},
		{"other user", bob.ID, idleTTL, []string{"bobs"}},
		{"unknown user", "uid-nobody", idleTTL, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListSessions(ctx, tc.user, now, tc.idle)
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			if ids := sessionIDs(got); !slices.Equal(ids, tc.want) {
				t.Errorf("ListSessions = %v, want %v (newest use first)", ids, tc.want)
			}
			// The list and store.Session.Active must agree on every session.
			for _, sid := range []string{"recent", "older", "almost-idle", "idle", "expired", "revoked"} {
				if tc.user != alice.ID {
					break
				}
				active := mustGetSession(t, s, sid).Active(now, tc.idle)
				if listed := slices.Contains(sessionIDs(got), sid); listed != active {
					t.Errorf("%s: listed %v but Active() = %v", sid, listed, active)
				}
			}
		})
	}
}

func testSessionRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	s1 := mustSession(t, s, newSession(alice.ID, "s1", base))
	s2 := mustSession(t, s, newSession(alice.ID, "s2", base))
	s3 := mustSession(t, s, newSession(alice.ID, "s3", base))
	bobs := mustSession(t, s, newSession(bob.ID, "bobs", base))
	t1, t2, t3, t4 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute), base.Add(4*time.Minute)

	if err := s.RevokeSession(ctx, s1.ID, store.ReasonLogout, t1); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	checkSession(t, "revoked", mustGetSession(t, s, s1.ID), revoked(s1, t1, store.ReasonLogout))
	// Idempotent, and the first revocation is the one that stays on record.
	if err := s.RevokeSession(ctx, s1.ID, store.ReasonSignOutOne, t2); err != nil {
		t.Fatalf("RevokeSession again: %v", err)
	}
	checkSession(t, "revoked twice", mustGetSession(t, s, s1.ID), revoked(s1, t1, store.ReasonLogout))
	_, err := s.RotateRefresh(ctx, rotateReq(s1.ID, 0, 1, t2))
	wantErr(t, "RotateRefresh after revoke", err, store.ErrSessionEnded)
	wantErr(t, "RevokeSession(unknown)", s.RevokeSession(ctx, "nope", store.ReasonLogout, t2), store.ErrNotFound)

	if err := s.RevokeUserSessions(ctx, alice.ID, s2.ID, store.ReasonSignOutOthers, t3); err != nil {
		t.Fatalf("RevokeUserSessions(except s2): %v", err)
	}
	checkSession(t, "excepted", mustGetSession(t, s, s2.ID), s2)
	checkSession(t, "signed out", mustGetSession(t, s, s3.ID), revoked(s3, t3, store.ReasonSignOutOthers))
	checkSession(t, "already revoked", mustGetSession(t, s, s1.ID), revoked(s1, t1, store.ReasonLogout))
	checkSession(t, "another user's", mustGetSession(t, s, bobs.ID), bobs)

	if err := s.RevokeUserSessions(ctx, alice.ID, "", store.ReasonSignOutOthers, t4); err != nil {
		t.Fatalf("RevokeUserSessions(all): %v", err)
	}
	checkSession(t, "all signed out", mustGetSession(t, s, s2.ID), revoked(s2, t4, store.ReasonSignOutOthers))
	checkSession(t, "another user's, still", mustGetSession(t, s, bobs.ID), bobs)
}
