package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPasskeyRegisterAndSignIn: a signed-in user adds a passkey, which then
// signs in alone (amr [hwk]) and, after a password, as the second step
// (amr [pwd hwk]); the account pages list it.
func TestPasskeyRegisterAndSignIn(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	k := newSoftKey(t)
	b.addPasskey(k, "Laptop")
	keys, err := h.store.Passkeys(ctx, alice.ID)
	if err != nil || len(keys) != 1 || keys[0].Name != "Laptop" || keys[0].ID != b64(k.id) {
		t.Fatalf("stored passkeys = %+v, %v", keys, err)
	}
	if string(k.handle) != alice.ID {
		t.Fatalf("user handle %q, want the user's opaque id %q", k.handle, alice.ID)
	}
	if page := b.get("/account/passkeys"); page.StatusCode != http.StatusOK || !strings.Contains(page.body, "Laptop") {
		t.Fatalf("passkeys page: %d\n%s", page.StatusCode, page.body)
	}
	if page := b.get("/"); !strings.Contains(page.body, "Passkeys: <strong>1</strong>") {
		t.Fatalf("account page does not count the passkey:\n%s", page.body)
	}

	// A passkey alone.
	b2 := h.browser()
	r := b2.passkeyLogin(k, ceremonyInput{})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"redirect":"/"`) {
		t.Fatalf("passkey sign-in: %d %s", r.StatusCode, r.body)
	}
	if c := b2.claims(); !slices.Equal(c.AMR, []string{"hwk"}) || c.Subject != alice.ID {
		t.Fatalf("passkey token: sub %q amr %q, want %q [hwk]", c.Subject, c.AMR, alice.ID)
	}
	keys, _ = h.store.Passkeys(ctx, alice.ID)
	if keys[0].SignCount != 1 || keys[0].LastUsedAt == nil {
		t.Fatalf("after use: count %d, last used %v", keys[0].SignCount, keys[0].LastUsedAt)
	}

	// The password now needs a second step, which the passkey can be.
	b3 := h.browser()
	b3.passwordStep("alice", "correct horse", "")
	if page := b3.get("/login/otp"); !strings.Contains(page.body, `data-passkey="2fa"`) {
		t.Fatalf("the second step offers no passkey:\n%s", page.body)
	}
	begin := b3.jsonPost("/webauthn/2fa/begin", []byte(`{}`))
	if begin.StatusCode != http.StatusOK || !strings.Contains(begin.body, b64(k.id)) {
		t.Fatalf("2fa begin: %d %s", begin.StatusCode, begin.body)
	}
	r = b3.jsonPost("/webauthn/2fa/finish", k.get(begin.body, h.origin(), ceremonyInput{}))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("2fa finish: %d %s", r.StatusCode, r.body)
	}
	if c := b3.claims(); !slices.Equal(c.AMR, []string{"pwd", "hwk"}) {
		t.Fatalf("2fa token amr %q, want [pwd hwk]", c.AMR)
	}
	if n := h.sessionCount(alice.ID); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
}

// TestPasskeyRemove: removing a passkey needs a recent sign-in; a removed
// passkey no longer signs in, and with no second factor left the recovery
// codes go too.
func TestPasskeyRemove(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	k := newSoftKey(t)
	b.addPasskey(k, "Laptop")
	if err := h.store.ReplaceRecoveryCodes(ctx, alice.ID, []string{"h1", "h2"}); err != nil {
		t.Fatal(err)
	}
	remove := func(b *browser, id string) *response {
		return b.post("/account/passkeys/remove", url.Values{"id": {id}, "password": {"correct horse"}, "csrf_token": {b.token()}})
	}
	h.clock.Advance(recentAuth + time.Second)
	b.get("/refresh?return_to=%2F")
	want := "/login?prompt=login&return_to=" + url.QueryEscape(h.cfg.URL+"/account/passkeys")
	if r := remove(b, b64(k.id)); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("stale removal: %d %q, want 303 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	if r := b.jsonPost("/webauthn/register/begin", []byte(`{}`)); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, `"error":"reauthenticate"`) {
		t.Fatalf("stale register begin: %d %s", r.StatusCode, r.body)
	}
	b2 := h.browser()
	if r := b2.passkeyLogin(k, ceremonyInput{}); r.StatusCode != http.StatusOK {
		t.Fatalf("passkey sign-in: %d %s", r.StatusCode, r.body)
	}
	if r := remove(b2, "not-a-passkey"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("removing an unknown passkey: %d", r.StatusCode)
	}
	if r := remove(b2, b64(k.id)); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/passkeys" {
		t.Fatalf("removal: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if n, _ := h.store.RecoveryCodesLeft(ctx, alice.ID); n != 0 {
		t.Fatalf("%d recovery codes left with no factor", n)
	}
	if r := h.browser().passkeyLogin(k, ceremonyInput{}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a removed passkey signed in: %d %s", r.StatusCode, r.body)
	}
	h.browser().login("alice", "correct horse") // no second step any more
}

// TestPasskeySecondFactorHostile: the second step's ceremony belongs to its
// pending sign-in and its user.
func TestPasskeySecondFactorHostile(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("alice", "correct horse")
	h.createUser("bob", "correct horse")
	ka, kb := newSoftKey(t), newSoftKey(t)
	for name, k := range map[string]*softKey{"alice": ka, "bob": kb} {
		b := h.browser()
		b.login(name, "correct horse")
		b.addPasskey(k, name)
	}
	t.Run("no pending sign-in", func(t *testing.T) {
		if r := h.browser().jsonPost("/webauthn/2fa/begin", []byte(`{}`)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("begin: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("bob's passkey for alice's password", func(t *testing.T) {
		b := h.browser()
		b.passwordStep("alice", "correct horse", "")
		begin := b.jsonPost("/webauthn/2fa/begin", []byte(`{}`))
		if r := b.jsonPost("/webauthn/2fa/finish", kb.get(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("finish: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("ceremony of another pending sign-in", func(t *testing.T) {
		b1, b2 := h.browser(), h.browser()
		b1.passwordStep("alice", "correct horse", "")
		b2.passwordStep("alice", "correct horse", "")
		begin := b1.jsonPost("/webauthn/2fa/begin", []byte(`{}`))
		b2.cookies[h.srv.ceremonyCookie()] = b1.cookies[h.srv.ceremonyCookie()]
		if r := b2.jsonPost("/webauthn/2fa/finish", ka.get(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("finish: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("a sign-in ceremony is not a second step", func(t *testing.T) {
		b := h.browser()
		b.passwordStep("alice", "correct horse", "")
		begin := b.jsonPost("/webauthn/login/begin", []byte(`{}`))
		if r := b.jsonPost("/webauthn/2fa/finish", ka.get(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("finish: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("a second step is not a sign-in", func(t *testing.T) {
		b := h.browser()
		b.passwordStep("alice", "correct horse", "")
		begin := b.jsonPost("/webauthn/2fa/begin", []byte(`{}`))
		if r := b.jsonPost("/webauthn/login/finish", ka.get(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("finish: %d %s", r.StatusCode, r.body)
		}
	})
	for _, name := range []string{"alice", "bob"} {
		u, _ := h.store.UserByName(context.Background(), name)
		if n := h.sessionCount(u.ID); n != 1 {
			t.Errorf("%s has %d sessions, want 1 (the one that added the passkey)", name, n)
		}
	}
}
