package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func passkey(id string, u store.User, at time.Time, count uint32) store.Passkey {
	return store.Passkey{ID: id, UserID: u.ID, Name: "Key " + id + " ✓", Credential: `{"id":"` + id + `","publicKey":"pQECAyYgASFYIA"}`,
		SignCount: count, CreatedAt: at}
}

func checkPasskey(t *testing.T, what string, got, want store.Passkey) {
	t.Helper()
	lastUsed := func(p store.Passkey) string {
		if p.LastUsedAt == nil {
			return "<nil>"
		}
		return ts(*p.LastUsedAt)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.Credential != want.Credential ||
		got.SignCount != want.SignCount || !got.CreatedAt.Equal(want.CreatedAt) || lastUsed(got) != lastUsed(want) {
		t.Errorf("%s:\n got %+v (last used %s)\nwant %+v (last used %s)", what, got, lastUsed(got), want, lastUsed(want))
	}
}

func testPasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	if got, err := s.Passkeys(ctx, alice.ID); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Passkeys of a new user = %v, %v; want an empty list", got, err)
	}
	a2 := passkey("cred-a2", alice, base.Add(time.Minute), 0)
	a1 := passkey("cred-a1", alice, base, 7)
	b1 := passkey("cred-b1", bob, base, 0)
	for _, p := range []store.Passkey{a2, a1, b1} {
		if err := s.AddPasskey(ctx, p); err != nil {
			t.Fatalf("AddPasskey(%s): %v", p.ID, err)
		}
	}
	wantErr(t, "AddPasskey(same id, other user)", s.AddPasskey(ctx, passkey("cred-a1", bob, base, 0)), store.ErrConflict)
	wantErr(t, "AddPasskey(unknown user)", s.AddPasskey(ctx, store.Passkey{ID: "x", UserID: "uid-nobody", Credential: "{}", CreatedAt: base}), store.ErrNotFound)
	got, err := s.Passkeys(ctx, alice.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("Passkeys = %v, %v; want 2", got, err)
	}
	checkPasskey(t, "Passkeys[0] (oldest first)", got[0], a1)
	checkPasskey(t, "Passkeys[1]", got[1], a2)
	p, err := s.PasskeyByID(ctx, "cred-b1")
	if err != nil {
		t.Fatalf("PasskeyByID: %v", err)
	}
	checkPasskey(t, "PasskeyByID", p, b1)
	_, err = s.PasskeyByID(ctx, "nope")
	wantErr(t, "PasskeyByID(unknown)", err, store.ErrNotFound)

	used := base.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		id    string
		count uint32
		want  error
	}{
		{"counter forward", "cred-a1", 8, nil},
		{"counter again", "cred-a1", 8, store.ErrConflict},
		{"counter backward", "cred-a1", 3, store.ErrConflict},
		{"counter to zero", "cred-a1", 0, store.ErrConflict},
		{"no counter, stays zero", "cred-a2", 0, nil},
		{"no counter, again", "cred-a2", 0, nil},
		{"counter starts", "cred-b1", 1, nil},
		{"unknown", "nope", 9, store.ErrNotFound},
	} {
		err := s.UsePasskey(ctx, tc.id, tc.count, used)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: UsePasskey(%s, %d) = %v, want %v", tc.name, tc.id, tc.count, err, tc.want)
		}
	}
	p, _ = s.PasskeyByID(ctx, "cred-a1")
	a1.SignCount, a1.LastUsedAt = 8, &used
	checkPasskey(t, "after UsePasskey", p, a1)

	wantErr(t, "RemovePasskey(bob's, as alice)", s.RemovePasskey(ctx, alice.ID, "cred-b1"), store.ErrNotFound)
	if err := s.RemovePasskey(ctx, alice.ID, "cred-a1"); err != nil {
		t.Fatalf("RemovePasskey: %v", err)
	}
	wantErr(t, "RemovePasskey(again)", s.RemovePasskey(ctx, alice.ID, "cred-a1"), store.ErrNotFound)
	got, _ = s.Passkeys(ctx, alice.ID)
	if ids := []string{}; len(got) != 1 || !slices.Equal(append(ids, got[0].ID), []string{"cred-a2"}) {
		t.Fatalf("Passkeys after RemovePasskey = %v", got)
	}
	if err := s.DeleteUser(ctx, bob.ID, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "AddPasskey(deleted user)", s.AddPasskey(ctx, passkey("cred-b2", bob, base, 0)), store.ErrNotFound)
}

func testPasskeyRace(t *testing.T, s store.Store) {
	alice := mustUser(t, s, "alice")
	if err := s.AddPasskey(t.Context(), passkey("cred", alice, base, 5)); err != nil {
		t.Fatal(err)
	}
	wins := race(t, 20, func() error { return s.UsePasskey(t.Context(), "cred", 6, base) }, store.ErrConflict)
	if wins != 1 {
		t.Fatalf("%d concurrent uses with one counter value succeeded, want exactly 1", wins)
	}
}
