package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

const idpA, idpB = "https://idp-a.example", "https://idp-b.example"

func link(userID, issuer, subject, email string, at time.Time) store.Identity {
	return store.Identity{Issuer: issuer, Subject: subject, UserID: userID, Provider: "p", Email: email, CreatedAt: at}
}

func testIdentities(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	if _, err := s.Identity(ctx, idpA, "sub-1"); err == nil {
		t.Fatal("Identity of nothing linked: no error")
	} else {
		wantErr(t, "Identity(none)", err, store.ErrNotFound)
	}
	want := link(alice.ID, idpA, "sub-1", "Alice@Corp.Example", base)
	if err := s.LinkIdentity(ctx, want); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	got, err := s.Identity(ctx, idpA, "sub-1")
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	want.Email = "alice@corp.example" // stored lowercase
	if got.UserID != want.UserID || got.Email != want.Email || got.Provider != "p" || !got.CreatedAt.Equal(base) {
		t.Fatalf("Identity = %+v, want %+v", got, want)
	}
	// The same subject at another issuer is another account; the key is both.
	_, err = s.Identity(ctx, idpB, "sub-1")
	wantErr(t, "Identity(other issuer)", err, store.ErrNotFound)
	_, err = s.Identity(ctx, idpA, "SUB-1")
	wantErr(t, "Identity(other case)", err, store.ErrNotFound)
	// A subject links one user; a user links one account per issuer.
	wantErr(t, "link taken subject", s.LinkIdentity(ctx, link(bob.ID, idpA, "sub-1", "", base)), store.ErrConflict)
	wantErr(t, "second account at one issuer", s.LinkIdentity(ctx, link(alice.ID, idpA, "sub-2", "", base)), store.ErrConflict)
	wantErr(t, "link unknown user", s.LinkIdentity(ctx, link("uid-nobody", idpB, "sub-9", "", base)), store.ErrNotFound)
	if err := s.LinkIdentity(ctx, link(alice.ID, idpB, "sub-1", "", base.Add(time.Second))); err != nil {
		t.Fatalf("LinkIdentity(second issuer): %v", err)
	}
	ids, err := s.Identities(ctx, alice.ID)
	if err != nil || len(ids) != 2 || ids[0].Issuer != idpA || ids[1].Issuer != idpB {
		t.Fatalf("Identities = %+v, %v", ids, err)
	}
	// Only verified emails (stored non-empty) are found, in any case.
	byEmail, err := s.IdentityByEmail(ctx, "ALICE@corp.example")
	if err != nil || byEmail.UserID != alice.ID {
		t.Fatalf("IdentityByEmail = %+v, %v", byEmail, err)
	}
	_, err = s.IdentityByEmail(ctx, "")
	wantErr(t, "IdentityByEmail(empty)", err, store.ErrNotFound)
	_, err = s.IdentityByEmail(ctx, "bob@corp.example")
	wantErr(t, "IdentityByEmail(unknown)", err, store.ErrNotFound)
	// Alice has a password: unlinking everything is allowed.
	if err := s.UnlinkIdentity(ctx, alice.ID, idpA, true); err != nil {
		t.Fatalf("UnlinkIdentity: %v", err)
	}
	wantErr(t, "unlink again", s.UnlinkIdentity(ctx, alice.ID, idpA, true), store.ErrNotFound)
	_, err = s.Identity(ctx, idpA, "sub-1")
	wantErr(t, "Identity(unlinked)", err, store.ErrNotFound)
	// The subject is free again.
	if err := s.LinkIdentity(ctx, link(bob.ID, idpA, "sub-1", "", base)); err != nil {
		t.Fatalf("relink to bob: %v", err)
	}
	if err := s.DeleteUser(ctx, bob.ID, base); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "link deleted user", s.LinkIdentity(ctx, link(bob.ID, idpB, "sub-7", "", base)), store.ErrNotFound)
	// Deleting bob removed his links: the subject can sign up anew.
	_, err = s.Identity(ctx, idpA, "sub-1")
	wantErr(t, "Identity(of a deleted user)", err, store.ErrNotFound)
	if ids, err := s.Identities(ctx, bob.ID); err != nil || len(ids) != 0 {
		t.Fatalf("Identities(deleted bob) = %v, %v; want none", ids, err)
	}
	again := store.User{ID: "bob-again", Username: "bob2", CreatedAt: base}
	if err := s.CreateLinkedUser(ctx, again, link(again.ID, idpA, "sub-1", "", base)); err != nil {
		t.Fatalf("sign up again with the deleted user's subject: %v", err)
	}
}

// testIdentityUnlinkLast: a user without a password keeps at least one way
// to sign in; a passkey counts as one.
func testIdentityUnlinkLast(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := store.User{ID: "uid-fed", Username: "fed", CreatedAt: base}
	if err := s.CreateLinkedUser(ctx, u, link("", idpA, "sub-a", "", base)); err != nil {
		t.Fatalf("CreateLinkedUser: %v", err)
	}
	if err := s.LinkIdentity(ctx, link(u.ID, idpB, "sub-b", "", base)); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkIdentity(ctx, u.ID, idpB, true); err != nil {
		t.Fatalf("unlink one of two: %v", err)
	}
	wantErr(t, "unlink the last", s.UnlinkIdentity(ctx, u.ID, idpA, true), store.ErrLastLogin)
	if _, err := s.Identity(ctx, idpA, "sub-a"); err != nil {
		t.Fatalf("the refused unlink removed the link: %v", err)
	}
	if err := s.AddPasskey(ctx, store.Passkey{ID: "cred-fed", UserID: u.ID, Credential: "{}", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkIdentity(ctx, u.ID, idpA, true); err != nil {
		t.Fatalf("unlink with a passkey left: %v", err)
	}
	if err := s.LinkIdentity(ctx, link(u.ID, idpA, "sub-a", "", base)); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePasskey(ctx, u.ID, "cred-fed"); err != nil {
		t.Fatal(err)
	}
	// An administrator (keepOne false) may.
	if err := s.UnlinkIdentity(ctx, u.ID, idpA, false); err != nil {
		t.Fatalf("admin unlink of the last: %v", err)
	}
}

// testIdentityUnlinkRace: two concurrent unlinks of a password-less user's
// two links: exactly one wins, the other is refused as the last.
func testIdentityUnlinkRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := store.User{ID: "uid-fed", Username: "fed", CreatedAt: base}
	if err := s.CreateLinkedUser(ctx, u, link("", idpA, "sub-a", "", base)); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkIdentity(ctx, link(u.ID, idpB, "sub-b", "", base)); err != nil {
		t.Fatal(err)
	}
	issuers := []string{idpA, idpB}
	errs := make([]error, 2)
	Barrier(2, func(i int) { errs[i] = s.UnlinkIdentity(ctx, u.ID, issuers[i], true) })
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrLastLogin):
			t.Errorf("unlink %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d unlinks won, want exactly 1", wins)
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("left %d links (%v), want 1", len(ids), err)
	}
}

// testCreateLinkedUser: the user and the link are made together or not at all.
func testCreateLinkedUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustUser(t, s, "taken")
	if err := s.LinkIdentity(ctx, link("uid-taken", idpA, "sub-taken", "", base)); err != nil {
		t.Fatal(err)
	}
	// Name taken: no link is left behind.
	err := s.CreateLinkedUser(ctx, store.User{ID: "uid-x", Username: "taken", CreatedAt: base}, link("", idpA, "sub-new", "", base))
	wantErr(t, "CreateLinkedUser(name taken)", err, store.ErrConflict)
	_, err = s.Identity(ctx, idpA, "sub-new")
	wantErr(t, "link of the refused user", err, store.ErrNotFound)
	// Subject taken: no user is left behind, and the name stays free.
	err = s.CreateLinkedUser(ctx, store.User{ID: "uid-y", Username: "fresh", CreatedAt: base}, link("", idpA, "sub-taken", "", base))
	wantErr(t, "CreateLinkedUser(subject taken)", err, store.ErrConflict)
	_, err = s.UserByName(ctx, "fresh")
	wantErr(t, "user of the refused link", err, store.ErrNotFound)
	if err := s.CreateLinkedUser(ctx, store.User{ID: "uid-y", Username: "fresh", CreatedAt: base}, link("", idpA, "sub-new", "", base)); err != nil {
		t.Fatalf("CreateLinkedUser: %v", err)
	}
	id, err := s.Identity(ctx, idpA, "sub-new")
	if err != nil || id.UserID != "uid-y" {
		t.Fatalf("Identity = %+v, %v", id, err)
	}
}

func testSessionUpstream(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustUser(t, s, "alice")
	mustSession(t, s, newSession(u.ID, "s1", base))
	_, _, err := s.SessionUpstream(ctx, "s1")
	wantErr(t, "SessionUpstream(none)", err, store.ErrNotFound)
	if err := s.SetSessionUpstream(ctx, "s1", "corp", []string{"corp:eng", "staff"}); err != nil {
		t.Fatalf("SetSessionUpstream: %v", err)
	}
	wantErr(t, "SetSessionUpstream(again)", s.SetSessionUpstream(ctx, "s1", "corp", nil), store.ErrConflict)
	wantErr(t, "SetSessionUpstream(no session)", s.SetSessionUpstream(ctx, "nope", "corp", nil), store.ErrNotFound)
	p, g, err := s.SessionUpstream(ctx, "s1")
	if err != nil || p != "corp" || len(g) != 2 || g[0] != "corp:eng" || g[1] != "staff" {
		t.Fatalf("SessionUpstream = %q %q %v", p, g, err)
	}
}
