package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/oidctest"
)

// TestBrowserUpstreamSignIn: in Chromium, against the real binaries and a
// real OpenID provider (zitadel/oidc's op with its own login page) on
// idp.localhost: an anonymous visit to alice's page, the provider's button
// on the sign-in page, the provider's own login form, the username choice
// (prefilled), alice's page, then app.domain.localhost signed in with no
// form at all.
func TestBrowserUpstreamSignIn(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{Users: "../testdata/upstream/users.json", Host: "idp.localhost"})
	secret := filepath.Join(t.TempDir(), "corp.secret")
	if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{extra: []string{"--idp", "name=corp,display=Corp SSO,issuer=" + op.URL +
		",client-id=" + op.ClientID + ",client-secret-file=" + secret + ",signup=open"}})
	op.Register(s.issuerURL + "/login/upstream/corp/callback")
	tb := newChrome(t)
	journey(t)

	home := s.userURL("alice")
	tb.navigate(home)
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/login?") {
		t.Fatalf("anonymous visit ended on %s, want the sign-in page", loc)
	}
	tb.clickAndLoad(`a.upstream`)
	if loc := tb.location(); !strings.HasPrefix(loc, op.URL+"/login/username") {
		t.Fatalf("the provider's button led to %s, want the provider's login page", loc)
	}
	tb.typeInto("Username:", "alice")
	tb.typeInto("Password:", "correct horse")
	tb.clickAndLoad(`button[type=submit]`)
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/login/upstream/corp/callback?") {
		t.Fatalf("after the provider's login the browser is on %s\n%s", loc, tb.text())
	}
	if v := eval[string](tb, `document.querySelector("#username").value`); v != "alice" {
		t.Fatalf("username prefilled with %q, want alice\n%s", v, tb.text())
	}
	tb.clickAndLoad(`form[action="/login/upstream/signup"] button[type=submit]`)
	if loc := tb.location(); loc != home {
		t.Fatalf("after choosing the username the browser is on %s, want %s\n%s", loc, home, tb.text())
	}
	if h1 := eval[string](tb, `document.querySelector("h1").innerText`); !strings.Contains(h1, "alice") {
		t.Fatalf("alice's page does not greet her: h1 %q", h1)
	}
	access := tb.cookie("canopy")
	if access == nil {
		t.Fatalf("no access cookie: %s", describeCookies(tb.cookies()))
	}
	claims := tokenPart(access.Value, 1)
	if claims["idp"] != "corp" || !strings.Contains(strings.Join(anyStrings(claims["amr"]), " "), "fed") {
		t.Fatalf("token claims idp %v amr %v, want corp and fed", claims["idp"], claims["amr"])
	}
	// The sign-in used up its flow cookie.
	if c := tb.cookie("canopy-upstream"); c != nil {
		t.Fatalf("the flow cookie outlived the sign-in: %+v", c)
	}
	tb.navigate(s.appURL())
	if loc := tb.location(); loc != s.appURL() {
		t.Fatalf("app.%s sent the browser to %s, want no form", s.domain, loc)
	}
	if txt := tb.text(); !strings.Contains(txt, "alice") {
		t.Fatalf("app page does not know alice:\n%s", txt)
	}

	// alice gets a password (from the command line) and, with it, an
	// authenticator app: her next sign-in at the provider asks for a code.
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "set-password", "alice"); err != nil {
		t.Fatalf("set-password: %v\n%s", err, out)
	}
	tb.navigate(s.issuerURL + "/login")
	tb.typeInto("Username", "alice")
	tb.typeInto("Password", alicePW)
	tb.clickAndLoad(`form[action="/login"] button[type=submit]`)
	key := enrolTOTP(t, tb, s.issuerURL) // the sign-in below uses the next step
	tb.navigate(s.issuerURL + "/login/upstream/corp?return_to=" + url.QueryEscape(home))
	if loc := tb.location(); !strings.HasPrefix(loc, op.URL+"/login/username") {
		t.Fatalf("the second provider sign-in went to %s, want the provider's login page", loc)
	}
	tb.typeInto("Username:", "alice")
	tb.typeInto("Password:", "correct horse")
	tb.clickAndLoad(`button[type=submit]`)
	// The cross-site return withholds Strict cookies: the callback shows
	// the code form itself, and its post (same-site) carries them.
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/login/upstream/corp/callback?") ||
		!eval[bool](tb, `!!document.querySelector('form[action="/login/otp"]')`) {
		t.Fatalf("after the provider the browser is on %s, want the code form\n%s", loc, tb.text())
	}
	tb.typeInto("Code", totpCode(t, key))
	tb.clickAndLoad(`form[action="/login/otp"] button[type=submit]`)
	if loc := tb.location(); loc != home {
		t.Fatalf("after the code the browser is on %s, want %s\n%s", loc, home, tb.text())
	}
	access = tb.cookie("canopy")
	if access == nil {
		t.Fatal("no access cookie after the code")
	}
	claims = tokenPart(access.Value, 1)
	if amr := strings.Join(anyStrings(claims["amr"]), " "); claims["idp"] != "corp" || amr != "fed otp" {
		t.Fatalf("token idp %v amr %q, want corp and [fed otp]", claims["idp"], amr)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
