package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// grantToken stores a client token of c in session sid at at, which
// records the grant.
func grantToken(t *testing.T, s store.Store, c store.Client, u store.User, sid, tok string, at time.Time) error {
	t.Helper()
	return s.CreateClientToken(t.Context(), store.ClientToken{Hash: hash(tok), CodeHash: hash("code-" + tok), ClientID: c.ID,
		UserID: u.ID, SessionID: sid, Scope: "openid", CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute)})
}

// pendingKeys lists the outbox rows due at now as client/session/reason.
func pendingKeys(t *testing.T, s store.Store, now time.Time) []string {
	t.Helper()
	due, err := s.DueLogouts(t.Context(), now, 100)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(due))
	for i, p := range due {
		keys[i] = p.ClientID + "/" + p.SessionID + "/" + p.Reason
	}
	slices.Sort(keys)
	return keys
}

func wantPending(t *testing.T, s store.Store, now time.Time, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := pendingKeys(t, s, now); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: outbox %v, want %v", what, got, want)
	}
}

// testLogoutOutbox: ending a session puts a row in the outbox for each
// client with a back-channel URI that received a token in it, and for no
// other; a claim is won once; a token for an ended session is refused.
func testLogoutOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bcl := oidcClient("client-bcl", "wiki", false)
	plain := oidcClient("client-plain", "plain", false)
	plain.BackchannelLogoutURI = ""
	idle := oidcClient("client-idle", "idle", false) // has a URI, never got a token in s1
	for _, c := range []store.Client{bcl, plain, idle} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	mustSession(t, s, newSession(alice.ID, "s1", base))
	mustSession(t, s, newSession(alice.ID, "s2", base))
	for i, c := range []store.Client{bcl, plain, bcl} { // bcl twice: one grant
		if err := grantToken(t, s, c, alice, "s1", fmt.Sprintf("t%d", i), base); err != nil {
			t.Fatal(err)
		}
	}
	if err := grantToken(t, s, idle, alice, "s2", "t-idle", base); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, base.Add(time.Hour), "before any sign-out")
	at := base.Add(time.Minute)
	if err := s.RevokeSession(ctx, "s1", store.ReasonLogout, at); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, at.Add(-time.Second), "before the row is due")
	wantPending(t, s, at, "after signing out s1", "client-bcl/s1/logout")
	// Revoking again changes nothing; a token for the ended session is refused.
	if err := s.RevokeSession(ctx, "s1", store.ReasonSignOutOne, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "token in an ended session", grantToken(t, s, bcl, alice, "s1", "late", at.Add(time.Second)), store.ErrSessionEnded)
	wantPending(t, s, at.Add(time.Hour), "after revoking twice", "client-bcl/s1/logout")

	due, err := s.DueLogouts(ctx, at, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueLogouts = %v, %v", due, err)
	}
	p := due[0]
	if p.URI != bcl.BackchannelLogoutURI || p.IDTokenAlg != "RS256" || p.UserID != alice.ID || p.Attempts != 0 || !p.CreatedAt.Equal(at) {
		t.Errorf("pending logout %+v", p)
	}
	retry := at.Add(10 * time.Second)
	if ok, err := s.ClaimLogout(ctx, p, retry); err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if ok, err := s.ClaimLogout(ctx, p, retry); err != nil || ok {
		t.Fatalf("second claim of the same attempt = %v, %v; want false", ok, err)
	}
	wantPending(t, s, retry.Add(-time.Second), "claimed, before its retry time")
	due, err = s.DueLogouts(ctx, retry, 10)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 || !due[0].NextAt.Equal(retry) {
		t.Fatalf("DueLogouts after a claim = %+v, %v", due, err)
	}
	if err := s.DeleteLogout(ctx, bcl.ID, "s1"); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, retry.Add(time.Hour), "after delivery")

	// Refresh reuse ends s2: idle's row; removing the client takes it away.
	if _, err := s.RotateRefresh(ctx, rotateReq("s2", 0, 1, at)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, rotateReq("s2", 0, 1, at.Add(time.Hour))); !errors.Is(err, store.ErrReuse) {
		t.Fatalf("reuse: %v", err)
	}
	wantPending(t, s, at.Add(2*time.Hour), "after reuse ended s2", "client-idle/s2/"+store.ReasonReuse)
	if err := s.RemoveClient(ctx, idle.ID); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, at.Add(2*time.Hour), "after removing the client")
}

// testLogoutOutboxUserChanges: disabling a user, changing the password
// (keeping one session) and deleting the user end the sessions' grants.
func testLogoutOutboxUserChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	c := oidcClient("client-bcl", "wiki", false)
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"a1", "a2"} {
		mustSession(t, s, newSession(alice.ID, sid, base))
		if err := grantToken(t, s, c, alice, sid, "t-"+sid, base); err != nil {
			t.Fatal(err)
		}
	}
	mustSession(t, s, newSession(bob.ID, "b1", base))
	if err := grantToken(t, s, c, bob, "b1", "t-b1", base); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Minute)
	if err := s.SetPassword(ctx, alice.ID, "new-hash", "a2", at); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, at, "password change keeping a2", "client-bcl/a1/"+store.ReasonPasswordChange)
	if err := s.SetDisabled(ctx, alice.ID, true, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, at.Add(time.Second), "alice disabled",
		"client-bcl/a1/"+store.ReasonPasswordChange, "client-bcl/a2/"+store.ReasonUserDisabled)
	if err := s.DeleteUser(ctx, bob.ID, at.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUserSessions(ctx, bob.ID, "", store.ReasonSignOutOthers, at.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, at.Add(3*time.Second), "bob deleted",
		"client-bcl/a1/"+store.ReasonPasswordChange, "client-bcl/a2/"+store.ReasonUserDisabled, "client-bcl/b1/"+store.ReasonUserDeleted)
}

// testLogoutOutboxExpiry: sessions that reach their end or go idle are
// picked up by ExpireGrants, in bounded steps, once.
func testLogoutOutboxExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	c := oidcClient("client-bcl", "wiki", false)
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, newSession(alice.ID, "old", base))
	mustSession(t, s, newSession(alice.ID, "new", base.Add(sessionTTL/2)))
	for _, sid := range []string{"old", "new"} {
		if err := grantToken(t, s, c, alice, sid, "t-"+sid, base.Add(sessionTTL/2)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ExpireGrants(ctx, base.Add(sessionTTL/2), 0, 10); err != nil || n != 0 {
		t.Fatalf("ExpireGrants with nothing ended = %d, %v", n, err)
	}
	end := base.Add(sessionTTL)
	if n, err := s.ExpireGrants(ctx, end, 0, 10); err != nil || n != 1 {
		t.Fatalf("ExpireGrants at old's end = %d, %v; want 1", n, err)
	}
	wantPending(t, s, end, "old expired", "client-bcl/old/"+store.ReasonExpired)
	if n, err := s.ExpireGrants(ctx, end, 0, 10); err != nil || n != 0 {
		t.Fatalf("ExpireGrants again = %d, %v; want 0", n, err)
	}
	// Idle: new was last used at its creation.
	idleAt := base.Add(sessionTTL/2 + time.Hour)
	if n, err := s.ExpireGrants(ctx, idleAt, 2*time.Hour, 10); err != nil || n != 0 {
		t.Fatalf("ExpireGrants before idle = %d, %v", n, err)
	}
	if n, err := s.ExpireGrants(ctx, idleAt, time.Hour, 10); err != nil || n != 1 {
		t.Fatalf("ExpireGrants idle = %d, %v; want 1", n, err)
	}
	wantPending(t, s, idleAt.Add(sessionTTL), "new idle", "client-bcl/old/"+store.ReasonExpired, "client-bcl/new/"+store.ReasonExpired)
}

// testLogoutOutboxPrune: rows past the age limit, and a client's rows
// beyond its newest perClient, are dropped and reported.
func testLogoutOutboxPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	c := oidcClient("client-bcl", "wiki", false)
	d := oidcClient("client-other", "other", false)
	for _, cl := range []store.Client{c, d} {
		if err := s.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		sid := fmt.Sprintf("s%d", i)
		mustSession(t, s, newSession(alice.ID, sid, base))
		if err := grantToken(t, s, c, alice, sid, "t-"+sid, base); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := grantToken(t, s, d, alice, sid, "u-"+sid, base); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeSession(ctx, sid, store.ReasonLogout, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	dropped, err := s.PruneLogouts(ctx, base.Add(time.Minute), 3)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range dropped {
		keys = append(keys, p.ClientID+"/"+p.SessionID)
	}
	slices.Sort(keys)
	// s0 of both clients is too old; of c's s1..s4, s1 is beyond the newest 3.
	if want := []string{"client-bcl/s0", "client-bcl/s1", "client-other/s0"}; !slices.Equal(keys, want) {
		t.Errorf("PruneLogouts dropped %v, want %v", keys, want)
	}
	wantPending(t, s, base.Add(time.Hour), "after pruning",
		"client-bcl/s2/logout", "client-bcl/s3/logout", "client-bcl/s4/logout")
}
