package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
)

func u32(v uint32) *uint32 { return &v }

// TestPasskeyLoginHostile: assertions crafted to be wrong in one way each
// are refused by the library's verification as the issuer drives it, and
// leave no session; a replay of a used challenge is refused too.
func TestPasskeyLoginHostile(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	bob := h.createUser("bob", "correct horse")
	ka, kb := newSoftKey(t), newSoftKey(t)
	ba, bb := h.browser(), h.browser()
	ba.login("alice", "correct horse")
	bb.login("bob", "correct horse")
	ba.addPasskey(ka, "alice's")
	bb.addPasskey(kb, "bob's")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger := newSoftKey(t)
	stranger.handle = []byte(alice.ID)
	// One sign-in, so that alice's passkey has a counter to move on from.
	if r := h.browser().passkeyLogin(ka, ceremonyInput{}); r.StatusCode != http.StatusOK {
		t.Fatalf("first passkey sign-in: %d %s", r.StatusCode, r.body)
	}

	tests := []struct {
		name   string
		key    *softKey
		in     ceremonyInput
		status int
	}{
		{"wrong origin", ka, ceremonyInput{origin: "http://evil.localhost:1"}, http.StatusUnauthorized},
		{"sibling subdomain origin", ka, ceremonyInput{origin: "http://alice.domain.localhost:" + h.port}, http.StatusUnauthorized},
		{"origin over https", ka, ceremonyInput{origin: "https://domain.localhost:" + h.port}, http.StatusUnauthorized},
		{"wrong RP ID", ka, ceremonyInput{rpID: "evil.localhost"}, http.StatusUnauthorized},
		{"RP ID of a subdomain", ka, ceremonyInput{rpID: "alice.domain.localhost"}, http.StatusUnauthorized},
		{"registration type", ka, ceremonyInput{typ: "webauthn.create"}, http.StatusUnauthorized},
		{"another challenge", ka, ceremonyInput{challenge: b64([]byte("0123456789abcdef0123456789abcdef"))}, http.StatusUnauthorized},
		{"no user verification", ka, ceremonyInput{flags: flagUP}, http.StatusUnauthorized},
		{"no user presence", ka, ceremonyInput{flags: flagUV}, http.StatusUnauthorized},
		{"signed by another key", ka, ceremonyInput{signer: other}, http.StatusUnauthorized},
		{"unknown credential", stranger, ceremonyInput{}, http.StatusUnauthorized},
		{"user handle of another user", ka, ceremonyInput{handle: []byte(bob.ID)}, http.StatusUnauthorized},
		{"bob's key claiming alice", kb, ceremonyInput{handle: []byte(alice.ID)}, http.StatusUnauthorized},
		{"counter does not move", ka, ceremonyInput{count: u32(1)}, http.StatusUnauthorized},
		{"counter back to zero", ka, ceremonyInput{count: u32(0)}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			r := b.passkeyLogin(tc.key, tc.in)
			if r.StatusCode != tc.status || b.cookies[h.cfg.Cookies().Access] != "" {
				t.Fatalf("status %d, access cookie %v; want %d and none\n%s", r.StatusCode, b.cookies[h.cfg.Cookies().Access] != "", tc.status, r.body)
			}
			if strings.Contains(r.body, "protocol") || strings.Contains(r.body, "Error validating") {
				t.Fatalf("the answer shows the library's error: %s", r.body)
			}
		})
	}

	t.Run("replayed assertion", func(t *testing.T) {
		b := h.browser()
		begin := b.jsonPost("/webauthn/login/begin", []byte(`{}`))
		answer := ka.get(begin.body, h.origin(), ceremonyInput{})
		if r := b.jsonPost("/webauthn/login/finish", answer); r.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %s", r.StatusCode, r.body)
		}
		b2 := h.browser()
		b2.cookies = b.cookies // even with the very cookies of the first
		if r := b2.jsonPost("/webauthn/login/finish", answer); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("the same answer again: %d %s, want 400", r.StatusCode, r.body)
		}
		// With a fresh ceremony, the old answer signs the wrong challenge.
		b3 := h.browser()
		b3.jsonPost("/webauthn/login/begin", []byte(`{}`))
		if r := b3.jsonPost("/webauthn/login/finish", answer); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old answer in a new ceremony: %d %s, want 401", r.StatusCode, r.body)
		}
	})
	t.Run("challenge from another browser", func(t *testing.T) {
		victim, attacker := h.browser(), h.browser()
		vBegin := victim.jsonPost("/webauthn/login/begin", []byte(`{}`))
		attacker.jsonPost("/webauthn/login/begin", []byte(`{}`))
		answer := ka.get(vBegin.body, h.origin(), ceremonyInput{})
		if r := attacker.jsonPost("/webauthn/login/finish", answer); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("finishing another browser's ceremony: %d %s, want 401", r.StatusCode, r.body)
		}
		if r := h.browser().jsonPost("/webauthn/login/finish", answer); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("finishing with no ceremony: %d %s, want 400", r.StatusCode, r.body)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		if err := h.store.SetDisabled(context.Background(), bob.ID, true, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = h.store.SetDisabled(context.Background(), bob.ID, false, h.clock.Now()) }()
		if r := h.browser().passkeyLogin(kb, ceremonyInput{}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled user's passkey: %d %s", r.StatusCode, r.body)
		}
	})
	if n := h.sessionCount(alice.ID); n != 3 {
		t.Fatalf("alice has %d sessions, want 3 (the password one, the first passkey one and the replay test's)", n)
	}
}

// TestPasskeyRegisterHostile: a registration answer wrong in one way is
// refused; a ceremony finishes only in the session that began it, once.
func TestPasskeyRegisterHostile(t *testing.T) {
	h := newHarness(t, options{})
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		h.createUser(name, "correct horse")
	}
	tests := []struct {
		name   string
		in     ceremonyInput
		status int
	}{
		{"wrong origin", ceremonyInput{origin: "http://evil.localhost:1"}, http.StatusBadRequest},
		{"wrong RP ID", ceremonyInput{rpID: "evil.localhost"}, http.StatusBadRequest},
		{"sign-in type", ceremonyInput{typ: "webauthn.get"}, http.StatusBadRequest},
		{"another challenge", ceremonyInput{challenge: b64([]byte("0123456789abcdef0123456789abcdef"))}, http.StatusBadRequest},
		{"no user verification", ceremonyInput{flags: flagUP | flagAT}, http.StatusBadRequest},
		{"no attested credential", ceremonyInput{flags: flagUP | flagUV}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			b.login("alice", "correct horse")
			begin := b.jsonPost("/webauthn/register/begin", []byte(`{"name":"x","password":"correct horse"}`))
			r := b.jsonPost("/webauthn/register/finish", newSoftKey(t).create(begin.body, h.origin(), tc.in))
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.status, r.body)
			}
		})
	}
	t.Run("replayed registration", func(t *testing.T) {
		b := h.browser()
		b.login("carol", "correct horse")
		begin := b.jsonPost("/webauthn/register/begin", []byte(`{"name":"x","password":"correct horse"}`))
		answer := newSoftKey(t).create(begin.body, h.origin(), ceremonyInput{})
		if r := b.jsonPost("/webauthn/register/finish", answer); r.StatusCode != http.StatusOK {
			t.Fatalf("first: %d %s", r.StatusCode, r.body)
		}
		if r := b.jsonPost("/webauthn/register/finish", answer); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("again: %d %s, want 400", r.StatusCode, r.body)
		}
	})
	for _, who := range []string{"alice", "bob"} {
		t.Run("ceremony of another session, as "+who, func(t *testing.T) {
			a, other := h.browser(), h.browser()
			a.login("alice", "correct horse")
			other.login(who, "correct horse")
			begin := a.jsonPost("/webauthn/register/begin", []byte(`{"name":"x","password":"correct horse"}`))
			other.cookies[h.srv.ceremonyCookie()] = a.cookies[h.srv.ceremonyCookie()]
			if r := other.jsonPost("/webauthn/register/finish", newSoftKey(t).create(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.StatusCode, r.body)
			}
		})
	}
	t.Run("a credential registered twice", func(t *testing.T) {
		k := newSoftKey(t)
		a, b := h.browser(), h.browser()
		a.login("dave", "correct horse")
		b.login("erin", "correct horse")
		a.addPasskey(k, "one")
		begin := b.jsonPost("/webauthn/register/begin", []byte(`{"name":"two","password":"correct horse"}`))
		if r := b.jsonPost("/webauthn/register/finish", k.create(begin.body, h.origin(), ceremonyInput{})); r.StatusCode != http.StatusConflict {
			t.Fatalf("status %d, want 409: %s", r.StatusCode, r.body)
		}
	})
}

// TestWebAuthnEndpointsCSRF: every /webauthn/ endpoint refuses a request
// without the issuer's Origin, the header token, or JSON.
func TestWebAuthnEndpointsCSRF(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	tok := b.token()
	for _, path := range []string{"/webauthn/register/begin", "/webauthn/register/finish", "/webauthn/login/begin",
		"/webauthn/login/finish", "/webauthn/2fa/begin", "/webauthn/2fa/finish"} {
		for _, tc := range []struct {
			name   string
			header http.Header
		}{
			{"no Origin", http.Header{"Content-Type": {"application/json"}, "X-Csrf-Token": {tok}}},
			{"sibling Origin", http.Header{"Content-Type": {"application/json"}, "X-Csrf-Token": {tok}, "Origin": {"http://alice.domain.localhost:" + h.port}}},
			{"no token", http.Header{"Content-Type": {"application/json"}, "Origin": {h.origin()}}},
			{"wrong token", http.Header{"Content-Type": {"application/json"}, "Origin": {h.origin()}, "X-Csrf-Token": {tok[:len(tok)-2] + "AA"}}},
			{"form content type", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {h.origin()}, "X-Csrf-Token": {tok}}},
			{"cross-site fetch", http.Header{"Content-Type": {"application/json"}, "Origin": {h.origin()}, "X-Csrf-Token": {tok}, "Sec-Fetch-Site": {"same-site"}}},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				r := b.do(request{method: http.MethodPost, target: path, body: strings.NewReader(`{}`), header: tc.header})
				if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, `"error":"forbidden"`) {
					t.Fatalf("status %d %s, want 403 JSON", r.StatusCode, r.body)
				}
			})
		}
	}
}
