package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// testRevocations: a user-level change is one row however many sessions it
// ends; a session stays listed on its own unless a row covers every token of
// it; a session used in the row's own second is listed on its own.
func testRevocations(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	for i := range 50 {
		mustSession(t, s, newSession(alice.ID, fmt.Sprintf("a-%02d", i), base))
	}
	mustSession(t, s, newSession(alice.ID, "a-keep", base))
	mustSession(t, s, newSession(bob.ID, "b-old", base))
	// Used in the very second the change is made: one of its tokens may
	// carry that second as iat, which "iat < before" does not cover.
	mustSession(t, s, newSession(alice.ID, "a-same-second", base.Add(2*time.Minute+100*time.Millisecond)))
	if err := s.RevokeSession(ctx, "a-00", store.ReasonLogout, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "b-old", store.ReasonLogout, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	change := base.Add(2*time.Minute + 500*time.Millisecond)
	if err := s.SetPassword(ctx, alice.ID, "new-hash", "a-keep", change); err != nil {
		t.Fatal(err)
	}
	sessions, users, err := s.RevocationsSince(ctx, base)
	if err != nil {
		t.Fatalf("RevocationsSince: %v", err)
	}
	wantUsers := []store.UserRevocation{{UserID: alice.ID, Before: base.Add(2 * time.Minute),
		Until: base.Add(2*time.Minute + 100*time.Millisecond + accessTTL), ExceptSID: "a-keep"}}
	if !slices.EqualFunc(users, wantUsers, sameUserRevocation) {
		t.Errorf("user revocations:\n got %v\nwant %v", users, wantUsers)
	}
	if got, want := sids(sessions), []string{"a-same-second", "b-old"}; !slices.Equal(got, want) {
		t.Errorf("sessions listed on their own = %v, want %v (the other 50 are covered by the user's row)", got, want)
	}
	if mustGetSession(t, s, "a-keep").RevokedAt != nil {
		t.Error("the session that changed the password was revoked")
	}

	// Disabling a user whose tokens have all expired records nothing.
	if err := s.SetDisabled(ctx, bob.ID, true, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, users, err = s.RevocationsSince(ctx, base); err != nil || len(users) != 1 {
		t.Errorf("after disabling a user with no live token: %v, %v; want alice's row alone", users, err)
	}
	// Past its until, nothing is published.
	sessions, users, err = s.RevocationsSince(ctx, base.Add(time.Hour))
	if err != nil || len(sessions)+len(users) != 0 {
		t.Errorf("RevocationsSince(after every until) = %v, %v, %v; want nothing", sessions, users, err)
	}

	// Every user-level path records a row: sign out everywhere, delete.
	if err := s.SetDisabled(ctx, bob.ID, false, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, newSession(bob.ID, "b-new", base.Add(2*time.Hour)))
	if err := s.RevokeUserSessions(ctx, bob.ID, "", store.ReasonSignOutOthers, base.Add(2*time.Hour+time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, newSession(alice.ID, "a-new", base.Add(2*time.Hour)))
	if err := s.DeleteUser(ctx, alice.ID, base.Add(2*time.Hour+time.Minute)); err != nil {
		t.Fatal(err)
	}
	sessions, users, err = s.RevocationsSince(ctx, base.Add(2*time.Hour))
	if err != nil || len(sessions) != 0 || len(users) != 2 {
		t.Errorf("after sign-out everywhere and delete: %v, %v, %v; want two user rows and no session", sessions, users, err)
	}
}

func sameUserRevocation(a, b store.UserRevocation) bool {
	return a.UserID == b.UserID && a.Before.Equal(b.Before) && a.Until.Equal(b.Until) && a.ExceptSID == b.ExceptSID
}

func sids(rs []store.Revoked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.SID
	}
	return out
}
