package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	groups := func(u store.User) []string {
		t.Helper()
		got, err := s.Groups(ctx, u.ID)
		if err != nil {
			t.Fatalf("Groups(%s): %v", u.Username, err)
		}
		if got == nil {
			t.Fatalf("Groups(%s) = nil, want an empty list", u.Username)
		}
		return got
	}
	if got := groups(alice); len(got) != 0 {
		t.Fatalf("Groups of a new user = %q, want none", got)
	}
	for _, g := range []string{"ops", "admins", "ops", "b_team", "a-team"} {
		if err := s.AddGroup(ctx, alice.ID, g); err != nil {
			t.Fatalf("AddGroup(%s): %v", g, err)
		}
	}
	// Sorted by bytes, whatever the database's locale: '-' < '_' < letters.
	if got, want := groups(alice), []string{"a-team", "admins", "b_team", "ops"}; !slices.Equal(got, want) {
		t.Fatalf("Groups = %q, want %q (sorted, no duplicates)", got, want)
	}
	if got := groups(bob); len(got) != 0 {
		t.Fatalf("bob's groups = %q, want none: memberships are per user", got)
	}
	if err := s.RemoveGroup(ctx, alice.ID, "admins"); err != nil {
		t.Fatalf("RemoveGroup: %v", err)
	}
	wantErr(t, "RemoveGroup(again)", s.RemoveGroup(ctx, alice.ID, "admins"), store.ErrNotFound)
	wantErr(t, "RemoveGroup(bob, ops)", s.RemoveGroup(ctx, bob.ID, "ops"), store.ErrNotFound)
	if got, want := groups(alice), []string{"a-team", "b_team", "ops"}; !slices.Equal(got, want) {
		t.Fatalf("Groups after RemoveGroup = %q, want %q", got, want)
	}
	wantErr(t, "AddGroup(unknown user)", s.AddGroup(ctx, "uid-nobody", "ops"), store.ErrNotFound)
	if err := s.DeleteUser(ctx, bob.ID, base.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantErr(t, "AddGroup(deleted user)", s.AddGroup(ctx, bob.ID, "ops"), store.ErrNotFound)
}

func testGroupNames(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	for _, g := range []string{"", "Admins", "-ops", "_ops", "a b", "a.b", "ops\x00", "ädmins", "0123456789012345678901234567890123"} {
		if err := s.AddGroup(ctx, alice.ID, g); err == nil {
			t.Errorf("AddGroup(%q) succeeded, want an error", g)
		}
	}
	if got, err := s.Groups(ctx, alice.ID); err != nil || len(got) != 0 {
		t.Fatalf("Groups after refused names = %q, %v; want none", got, err)
	}
	longest := "a1234567890123456789012345678901"
	if err := s.AddGroup(ctx, alice.ID, longest); err != nil {
		t.Fatalf("AddGroup(%d characters): %v", len(longest), err)
	}
}

func testMemberships(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.Memberships(ctx); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Memberships of an empty store = %v, %v; want an empty list", got, err)
	}
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	carol := mustUser(t, s, "carol")
	for _, m := range []struct {
		u store.User
		g string
	}{{bob, "ops"}, {alice, "ops"}, {carol, "admins"}, {alice, "admins"}} {
		if err := s.AddGroup(ctx, m.u.ID, m.g); err != nil {
			t.Fatalf("AddGroup(%s, %s): %v", m.u.Username, m.g, err)
		}
	}
	if err := s.DeleteUser(ctx, carol.ID, base.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	got, err := s.Memberships(ctx)
	if err != nil {
		t.Fatalf("Memberships: %v", err)
	}
	want := []store.Membership{
		{Group: "admins", UserID: alice.ID, Username: "alice"},
		{Group: "ops", UserID: alice.ID, Username: "alice"},
		{Group: "ops", UserID: bob.ID, Username: "bob"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Memberships =\n %v\nwant (deleted carol left out)\n %v", got, want)
	}
}

func testSessionAMR(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	mustSession(t, s, newSession(alice.ID, "s1", base))
	mustSession(t, s, newSession(alice.ID, "s2", base))
	_, err := s.SessionAMR(ctx, "s1")
	wantErr(t, "SessionAMR before SetSessionAMR", err, store.ErrNotFound)
	if err := s.SetSessionAMR(ctx, "s1", []string{wire.AMRPassword, wire.AMROTP}); err != nil {
		t.Fatalf("SetSessionAMR: %v", err)
	}
	if err := s.SetSessionAMR(ctx, "s2", []string{wire.AMRHardware}); err != nil {
		t.Fatalf("SetSessionAMR(s2): %v", err)
	}
	// Recorded once: a session's methods never change.
	wantErr(t, "SetSessionAMR(again)", s.SetSessionAMR(ctx, "s1", []string{wire.AMRHardware}), store.ErrConflict)
	wantErr(t, "SetSessionAMR(unknown session)", s.SetSessionAMR(ctx, "nope", []string{wire.AMRPassword}), store.ErrNotFound)
	for sid, want := range map[string][]string{"s1": {"pwd", "otp"}, "s2": {"hwk"}} {
		got, err := s.SessionAMR(ctx, sid)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SessionAMR(%s) = %q, %v; want %q in order", sid, got, err, want)
		}
	}
	// Swept with its session.
	if n, err := s.Sweep(ctx, base.Add(sessionTTL+time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	_, err = s.SessionAMR(ctx, "s1")
	wantErr(t, "SessionAMR after Sweep", err, store.ErrNotFound)
}
