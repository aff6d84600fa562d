package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/store"
)

// TestUpstreamLocalSecondFactor: a provider sign-in of an account with an
// authenticator app goes through the second factor; the callback answers
// with the code form itself (no Strict cookie from before the cross-site
// return is needed), and the token's amr is the provider's plus "otp".
func TestUpstreamLocalSecondFactor(t *testing.T) {
	for _, tc := range []struct {
		extra string
		amr   []string
	}{
		{"", []string{"fed", "otp"}},
		// The provider sends only "pwd": trusted, it is no second factor.
		{",trust-amr=true", []string{"fed", "pwd", "otp"}},
	} {
		t.Run(strings.Join(tc.amr, "-"), func(t *testing.T) {
			f := newFedHarness(t, tc.extra, options{})
			u := f.createUser("carol", "pw-pw-pw-pw-pw")
			if err := f.store.LinkIdentity(context.Background(), store.Identity{Issuer: f.op.URL, Subject: "sub-carol", UserID: u.ID,
				Provider: "corp", CreatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			secret := f.enableTOTP(u)
			returnTo := "http://carol." + f.cfg.CookieDomain + ":" + f.port + "/page"
			b := f.browser()
			b.token() // a CSRF cookie from an earlier visit...
			auth := f.authorize(b, "?return_to="+url.QueryEscape(returnTo))
			cb := f.atProvider(auth, "carol")
			delete(b.cookies, f.cfg.Cookies().CSRF) // ...which the cross-site return withholds
			page := b.get(cb)
			if page.StatusCode != http.StatusOK || setCookies(page)[f.cfg.Cookies().Access] != nil {
				t.Fatalf("callback: %d, want the second-factor page and no session:\n%s", page.StatusCode, page.body)
			}
			tok := hidden(page.body, "csrf_token")
			if tok == "" {
				t.Fatalf("no csrf_token on the second-factor page:\n%s", page.body)
			}
			if r := b.post("/login/otp", url.Values{"code": {"000000"}, "csrf_token": {tok}}); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong code: %d, want 401", r.StatusCode)
			}
			r := b.post("/login/otp", url.Values{"code": {f.codeAt(secret, 0)}, "csrf_token": {tok}})
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
				t.Fatalf("code: %d to %q, want 303 to %s:\n%s", r.StatusCode, r.Header.Get("Location"), returnTo, r.body)
			}
			cl := b.claims()
			if cl.Subject != u.ID || !slices.Equal(cl.AMR, tc.amr) || string(cl.Raw["idp"]) != `"corp"` {
				t.Fatalf("sub %s amr %q idp %s, want %s %q corp", cl.Subject, cl.AMR, cl.Raw["idp"], u.ID, tc.amr)
			}
		})
	}
}

// TestUpstreamLocalPasskey: a provider sign-in of an account with a passkey
// finishes with the passkey; the token's amr is "fed" and "hwk", and the
// audit trail says the provider and the passkey, not a password.
func TestUpstreamLocalPasskey(t *testing.T) {
	f := newFedHarness(t, "", options{})
	u := f.createUser("carol", "correct horse")
	if err := f.store.LinkIdentity(context.Background(), store.Identity{Issuer: f.op.URL, Subject: "sub-carol", UserID: u.ID,
		Provider: "corp", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	k := newSoftKey(t)
	setup := f.browser()
	setup.login("carol", "correct horse")
	setup.addPasskey(k, "laptop")

	returnTo := "http://carol." + f.cfg.CookieDomain + ":" + f.port + "/page"
	b := f.browser()
	page := b.get(f.atProvider(f.authorize(b, "?return_to="+url.QueryEscape(returnTo)), "carol"))
	if page.StatusCode != http.StatusOK || setCookies(page)[f.cfg.Cookies().Access] != nil || !strings.Contains(page.body, "passkey") {
		t.Fatalf("callback: %d, want the second-factor page offering the passkey and no session:\n%s", page.StatusCode, page.body)
	}
	begin := b.jsonPost("/webauthn/2fa/begin", []byte(`{}`))
	if begin.StatusCode != http.StatusOK {
		t.Fatalf("2fa begin: %d %s", begin.StatusCode, begin.body)
	}
	if r := b.jsonPost("/webauthn/2fa/finish", k.get(begin.body, f.origin(), ceremonyInput{})); r.StatusCode != http.StatusOK {
		t.Fatalf("2fa finish: %d %s", r.StatusCode, r.body)
	}
	cl := b.claims()
	if cl.Subject != u.ID || !slices.Equal(cl.AMR, []string{"fed", "hwk"}) || string(cl.Raw["idp"]) != `"corp"` {
		t.Fatalf("sub %s amr %q idp %s, want %s [fed hwk] corp", cl.Subject, cl.AMR, cl.Raw["idp"], u.ID)
	}
	events, err := f.store.Events(context.Background(), u.ID, 1)
	if err != nil || len(events) != 1 || events[0].Kind != "login" || events[0].Detail != "via corp and a passkey" {
		t.Fatalf("last event %+v (%v), want login via corp and a passkey", events, err)
	}
}

// TestHasSecondMethod: only a trusted mfa, otp or hwk from the provider
// stands for the local second factor.
func TestHasSecondMethod(t *testing.T) {
	for amr, want := range map[string]bool{"fed": false, "fed pwd": false, "fed mfa": true, "fed otp": true, "fed hwk": true, "fed pwd hwk": true} {
		if got := hasSecondMethod(strings.Fields(amr)); got != want {
			t.Errorf("%q: %v, want %v", amr, got, want)
		}
	}
}
