package server

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// TestProviderEmail: the email scope gives the address an upstream
// provider verified when the account was linked, with email_verified, in
// the ID token and from userinfo; an account with no such address, or a
// request without the scope, gets no email claims.
func TestProviderEmail(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true, noThrottle: true})
	alice := h.createUser("alice", "correct horse battery")
	h.createUser("bob", "correct horse battery")
	now := h.clock.Now()
	for _, id := range []store.Identity{
		{Issuer: "https://unverified.example", Subject: "a0", UserID: alice.ID, Provider: "other", CreatedAt: now.Add(-2 * time.Second)},
		{Issuer: "https://idp.example", Subject: "a1", UserID: alice.ID, Provider: "corp", Email: "alice@corp.example", CreatedAt: now.Add(-time.Second)},
		{Issuer: "https://a-later.example", Subject: "a2", UserID: alice.ID, Provider: "later", Email: "alice@later.example", CreatedAt: now},
	} {
		if err := h.store.LinkIdentity(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	c := h.testClients("")["conf"]
	for _, tc := range []struct {
		user, scope string
		want        string
	}{
		{"alice", "openid email", "alice@corp.example"},
		{"alice", "openid profile", ""},
		{"bob", "openid email profile", ""},
	} {
		t.Run(tc.user+" "+tc.scope, func(t *testing.T) {
			b := h.browser()
			b.login(tc.user, "correct horse battery")
			p := authParams(c)
			p.Set("scope", tc.scope)
			tk := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+p.Encode())))
			_, cl := h.idClaims(t, tk.IDToken)
			if cl.Email != tc.want || cl.EmailVerified != (tc.want != "") {
				t.Errorf("ID token email %q verified %v, want %q", cl.Email, cl.EmailVerified, tc.want)
			}
			r := b.userinfo(tk.AccessToken)
			var info map[string]any
			if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.body), &info) != nil {
				t.Fatalf("userinfo: %d %s", r.StatusCode, r.body)
			}
			if tc.want == "" {
				if _, ok := info["email"]; ok {
					t.Errorf("userinfo has an email: %s", r.body)
				}
				if _, ok := info["email_verified"]; ok {
					t.Errorf("userinfo has email_verified: %s", r.body)
				}
			} else if info["email"] != tc.want || info["email_verified"] != true {
				t.Errorf("userinfo %s, want email %s verified", r.body, tc.want)
			}
		})
	}
}
