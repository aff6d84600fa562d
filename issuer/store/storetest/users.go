package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func testUserCreateLookup(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	got, err := s.UserByName(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	checkUser(t, "UserByName", got, alice)
	got, err = s.UserByID(ctx, alice.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, "UserByID", got, alice)

	carol := store.User{ID: "uid-carol", Username: "carol", PasswordHash: "h", Disabled: true, CreatedAt: base.Add(time.Second)}
	if err := s.CreateUser(ctx, carol); err != nil {
		t.Fatalf("CreateUser(disabled): %v", err)
	}
	got, err = s.UserByName(ctx, "carol")
	if err != nil {
		t.Fatalf("UserByName(carol): %v", err)
	}
	checkUser(t, "disabled user", got, carol)

	_, err = s.UserByName(ctx, "bob")
	wantErr(t, "UserByName(unknown)", err, store.ErrNotFound)
	_, err = s.UserByID(ctx, "uid-bob")
	wantErr(t, "UserByID(unknown)", err, store.ErrNotFound)
}

func testUserConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	if err := s.DeleteUser(ctx, bob.ID, base.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	for _, tc := range []struct {
		name string
		user store.User
	}{
		{"same name", store.User{ID: "uid-2", Username: "alice", CreatedAt: base}},
		// Names are DNS labels, which ignore case; the caller lowercases,
		// and the store holds the line if it forgets.
		{"same name other case", store.User{ID: "uid-3", Username: "ALICE", CreatedAt: base}},
		{"same id", store.User{ID: "uid-alice", Username: "alicia", CreatedAt: base}},
		// A subdomain's owner must never change.
		{"deleted user's name", store.User{ID: "uid-4", Username: "bob", CreatedAt: base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "CreateUser", s.CreateUser(ctx, tc.user), store.ErrConflict)
		})
	}
	for name, want := range map[string]bool{"alice": true, "ALICE": true, "bob": true, "carol": false} {
		if got, err := s.UsernameTaken(ctx, name); err != nil || got != want {
			t.Errorf("UsernameTaken(%q) = %v, %v; want %v (a deleted user's name stays taken)", name, got, err, want)
		}
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(users) != 1 || users[0].Username != "alice" {
		t.Errorf("ListUsers after conflicts = %+v, want only alice", users)
	}
}

func testUserList(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"carol", "alice", "dave", "bob"} {
		mustUser(t, s, name)
	}
	if err := s.DeleteUser(ctx, "uid-bob", base.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	if want := []string{"alice", "carol", "dave"}; !slices.Equal(names, want) {
		t.Errorf("ListUsers = %v, want %v", names, want)
	}
}

func testUserDisable(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	s1 := mustSession(t, s, newSession(alice.ID, "s1", base))
	s2 := mustSession(t, s, newSession(alice.ID, "s2", base))
	out := mustSession(t, s, newSession(alice.ID, "out", base))
	tOut, t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)
	if err := s.RevokeSession(ctx, out.ID, store.ReasonLogout, tOut); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	if err := s.SetDisabled(ctx, alice.ID, true, t1); err != nil {
		t.Fatalf("SetDisabled(true): %v", err)
	}
	got, err := s.UserByID(ctx, alice.ID)
	if err != nil || !got.Disabled {
		t.Fatalf("UserByID after disable = %+v, %v; want disabled", got, err)
	}
	checkSession(t, "s1", mustGetSession(t, s, "s1"), revoked(s1, t1, store.ReasonUserDisabled))
	checkSession(t, "s2", mustGetSession(t, s, "s2"), revoked(s2, t1, store.ReasonUserDisabled))
	checkSession(t, "earlier logout", mustGetSession(t, s, "out"), revoked(out, tOut, store.ReasonLogout))
	_, err = s.RotateRefresh(ctx, rotateReq("s1", 0, 1, t1.Add(time.Second)))
	wantErr(t, "RotateRefresh for a disabled user", err, store.ErrSessionEnded)
	// A sign-in that raced with the disabling must not leave a live session.
	err = s.CreateSession(ctx, newSession(alice.ID, "late", t1), hash(tok("late", 0)))
	wantErr(t, "CreateSession for a disabled user", err, store.ErrSessionEnded)

	if err := s.SetDisabled(ctx, alice.ID, false, t2); err != nil {
		t.Fatalf("SetDisabled(false): %v", err)
	}
	got, err = s.UserByID(ctx, alice.ID)
	if err != nil || got.Disabled {
		t.Fatalf("UserByID after enable = %+v, %v; want enabled", got, err)
	}
	// Enabling again does not bring sessions back.
	checkSession(t, "s1 after enable", mustGetSession(t, s, "s1"), revoked(s1, t1, store.ReasonUserDisabled))
	_, err = s.RotateRefresh(ctx, rotateReq("s1", 0, 1, t2.Add(time.Second)))
	wantErr(t, "RotateRefresh after enable", err, store.ErrSessionEnded)
	mustSession(t, s, newSession(alice.ID, "s3", t2))
	mustRotate(t, s, rotateReq("s3", 0, 1, t2.Add(time.Second)), store.Rotated)

	wantErr(t, "SetDisabled(unknown)", s.SetDisabled(ctx, "uid-nobody", true, t2), store.ErrNotFound)
}

func testUserSetPassword(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	keep := mustSession(t, s, newSession(alice.ID, "keep", base))
	other := mustSession(t, s, newSession(alice.ID, "other", base))
	out := mustSession(t, s, newSession(alice.ID, "out", base))
	bobs := mustSession(t, s, newSession(bob.ID, "bobs", base))
	tOut, t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)
	if err := s.RevokeSession(ctx, out.ID, store.ReasonLogout, tOut); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	// From the account page: the session that made the change survives.
	if err := s.SetPassword(ctx, alice.ID, "hash-2", keep.ID, t1); err != nil {
		t.Fatalf("SetPassword(keep): %v", err)
	}
	got, err := s.UserByID(ctx, alice.ID)
	if err != nil || got.PasswordHash != "hash-2" {
		t.Fatalf("UserByID after SetPassword = %+v, %v; want hash-2", got, err)
	}
	checkSession(t, "kept session", mustGetSession(t, s, keep.ID), keep)
	checkSession(t, "other session", mustGetSession(t, s, other.ID), revoked(other, t1, store.ReasonPasswordChange))
	checkSession(t, "earlier logout", mustGetSession(t, s, out.ID), revoked(out, tOut, store.ReasonLogout))
	checkSession(t, "another user's session", mustGetSession(t, s, bobs.ID), bobs)
	mustRotate(t, s, rotateReq(keep.ID, 0, 1, t1.Add(time.Second)), store.Rotated)

	// From the command line: every session ends.
	if err := s.SetPassword(ctx, alice.ID, "hash-3", "", t2); err != nil {
		t.Fatalf("SetPassword(all): %v", err)
	}
	sess := mustGetSession(t, s, keep.ID)
	if sess.RevokedAt == nil || !sess.RevokedAt.Equal(t2) || sess.RevokeReason != store.ReasonPasswordChange {
		t.Errorf("kept session after SetPassword(all) = %+v, want revoked at %v", viewSession(sess), t2)
	}
	_, err = s.RotateRefresh(ctx, rotateReq(keep.ID, 1, 2, t2.Add(time.Second)))
	wantErr(t, "RotateRefresh after SetPassword(all)", err, store.ErrSessionEnded)

	wantErr(t, "SetPassword(unknown)", s.SetPassword(ctx, "uid-nobody", "h", "", t2), store.ErrNotFound)

	// From the account page, staying signed in elsewhere: no session ends.
	stay := mustSession(t, s, newSession(alice.ID, "stay", t2))
	if err := s.ReplacePassword(ctx, alice.ID, "hash-4"); err != nil {
		t.Fatalf("ReplacePassword: %v", err)
	}
	if got, err := s.UserByID(ctx, alice.ID); err != nil || got.PasswordHash != "hash-4" {
		t.Fatalf("UserByID after ReplacePassword = %+v, %v; want hash-4", got, err)
	}
	checkSession(t, "session after ReplacePassword", mustGetSession(t, s, stay.ID), stay)
	wantErr(t, "ReplacePassword(unknown)", s.ReplacePassword(ctx, "uid-nobody", "h"), store.ErrNotFound)
}

func testUserDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	s1 := mustSession(t, s, newSession(alice.ID, "s1", base))
	t1 := base.Add(time.Hour)
	if err := s.DeleteUser(ctx, alice.ID, t1); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}

	_, err := s.UserByName(ctx, "alice")
	wantErr(t, "UserByName(deleted)", err, store.ErrNotFound)
	_, err = s.UserByID(ctx, alice.ID)
	wantErr(t, "UserByID(deleted)", err, store.ErrNotFound)
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Username != "bob" {
		t.Errorf("ListUsers after delete = %+v, %v; want only bob", users, err)
	}
	checkSession(t, "session of deleted user", mustGetSession(t, s, s1.ID), revoked(s1, t1, store.ReasonUserDeleted))
	_, err = s.RotateRefresh(ctx, rotateReq(s1.ID, 0, 1, t1.Add(time.Second)))
	wantErr(t, "RotateRefresh for a deleted user", err, store.ErrSessionEnded)

	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, alice.ID, t1), store.ErrNotFound)
	wantErr(t, "SetDisabled(deleted)", s.SetDisabled(ctx, alice.ID, false, t1), store.ErrNotFound)
	wantErr(t, "SetPassword(deleted)", s.SetPassword(ctx, alice.ID, "h", "", t1), store.ErrNotFound)
	err = s.CreateSession(ctx, newSession(alice.ID, "late", t1), hash(tok("late", 0)))
	wantErr(t, "CreateSession(deleted)", err, store.ErrNotFound)
	err = s.CreateUser(ctx, store.User{ID: "uid-new", Username: "alice", CreatedAt: t1})
	wantErr(t, "CreateUser(deleted name)", err, store.ErrConflict)
}
