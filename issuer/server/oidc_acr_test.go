package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/store"
)

// followSignIn takes an authorize response that sends the browser to the
// sign-in form and returns the return_to it carries, checking that the
// form is asked to sign in again.
func followSignIn(t *testing.T, r *response) string {
	t.Helper()
	loc := r.Header.Get("Location")
	u, err := url.Parse(loc)
	if r.StatusCode != http.StatusSeeOther || err != nil || u.Path != "/login" || u.Query().Get("prompt") != "login" {
		t.Fatalf("authorize: %d to %q, want the sign-in form with prompt=login\n%s", r.StatusCode, loc, r.body)
	}
	return u.Query().Get("return_to")
}

// continueAuthorize follows the sign-in's return (the continue page) to
// /authorize again and returns its answer.
func (b *browser) continueAuthorize(t *testing.T, returnTo string) *response {
	t.Helper()
	u, err := url.Parse(returnTo)
	if err != nil || u.Path != pathAuthorizeContinue {
		t.Fatalf("return_to %q, want %s", returnTo, pathAuthorizeContinue)
	}
	return b.get("/authorize?" + u.RawQuery)
}

// TestProviderACR: acr_values mfa asks a session signed in with a password
// alone to sign in again with its second factor; the ID token then says
// acr mfa (and keeps it on refresh). A session that already meets a class
// passes with no form. Without acr_values there is no acr claim.
func TestProviderACR(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true, noThrottle: true})
	alice := h.createUser("alice", "correct horse battery")
	c := h.testClients("")["conf"]
	b := h.browser()
	b.login("alice", "correct horse battery")
	secret := h.enableTOTP(alice) // after the sign-in: the session is pwd only

	plain := b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+authParams(c).Encode())))
	if _, cl := h.idClaims(t, plain.IDToken); cl.ACR != "" {
		t.Errorf("acr %q without acr_values", cl.ACR)
	}

	p := authParams(c)
	p.Set("acr_values", "urn:unknown mfa")
	p.Set("scope", "openid offline_access")
	ret := followSignIn(t, b.get("/authorize?"+p.Encode()))
	b.passwordStep("alice", "correct horse battery", ret)
	if r := b.code(h.codeAt(secret, 0)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("code step: %d\n%s", r.StatusCode, r.body)
	}
	tk := b.redeem(t, c, codeFrom(t, c, b.continueAuthorize(t, ret)))
	_, cl := h.idClaims(t, tk.IDToken)
	if cl.ACR != "mfa" || !slices.Equal(cl.AMR, []string{"pwd", "otp"}) {
		t.Errorf("after the step-up: acr %q amr %v, want mfa [pwd otp]", cl.ACR, cl.AMR)
	}
	if _, cl := h.idClaims(t, b.refresh(t, c, tk.RefreshToken).IDToken); cl.ACR != "mfa" {
		t.Errorf("after a refresh: acr %q, want mfa", cl.ACR)
	}

	// The stepped-up session meets mfa but not phr: "phr mfa" gives mfa,
	// with no form.
	p = authParams(c)
	p.Set("acr_values", "phr mfa")
	tk = b.redeem(t, c, codeFrom(t, c, b.get("/authorize?"+p.Encode())))
	if _, cl := h.idClaims(t, tk.IDToken); cl.ACR != "mfa" {
		t.Errorf("phr mfa: acr %q, want mfa", cl.ACR)
	}
}

// TestProviderACRUnmet: phr for an account with a passkey asks for a new
// sign-in; when that one is made without the passkey, the client gets
// unmet_authentication_requirements, not another round.
func TestProviderACRUnmet(t *testing.T) {
	h := newHarness(t, options{idTokenKeys: true, noThrottle: true})
	alice := h.createUser("alice", "correct horse battery")
	c := h.testClients("")["conf"]
	secret := h.enableTOTP(alice)
	if err := h.store.AddPasskey(t.Context(), store.Passkey{ID: "cred-1", UserID: alice.ID, Name: "Laptop", Credential: "{}",
		CreatedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	b.loginTOTP("alice", "correct horse battery", h.codeAt(secret, 0))
	p := authParams(c)
	p.Set("acr_values", "phr")
	ret := followSignIn(t, b.get("/authorize?"+p.Encode()))
	b.passwordStep("alice", "correct horse battery", ret)
	if r := b.code(h.codeAt(secret, 1)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("code step: %d\n%s", r.StatusCode, r.body)
	}
	r := b.continueAuthorize(t, ret)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), c.RedirectURIs[0]+"?") ||
		loc.Query().Get("error") != "unmet_authentication_requirements" || loc.Query().Get("code") != "" {
		t.Fatalf("after a sign-in without the passkey: %d to %q, want unmet_authentication_requirements", r.StatusCode, r.Header.Get("Location"))
	}
}
