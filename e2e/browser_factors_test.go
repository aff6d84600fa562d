package e2e

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestBrowserTOTPStepUp: in Chromium, a user sets up an authenticator app on
// the account page (reading the key off the page, as a person would from the
// QR code's text); an app that requires a one-time code sends their password
// session to sign in again; password and a code computed here get them in,
// with amr [pwd otp].
func TestBrowserTOTPStepUp(t *testing.T) {
	s := newStack(t, stackOptions{})
	port := freePort(t)
	p := start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", s.issuerURL,
		"--host", "vault."+s.domain, "--require-amr", "otp")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", port), p)
	vault := fmt.Sprintf("http://vault.%s:%d/", s.domain, port)

	tb := newChrome(t)
	journey(t)
	signUpInBrowser(t, s, tb, "erin")

	// Set up the authenticator app.
	secret := enrolTOTP(t, tb, s.issuerURL)

	// The password session is sent to sign in again (prompt=login asks even
	// with a session): the password, then a code.
	tb.navigate(vault)
	loc := tb.location()
	if !strings.HasPrefix(loc, s.issuerURL+"/login?") || !strings.Contains(loc, "prompt=login") || !tb.onLoginForm() {
		t.Fatalf("the vault with a password session ended on %s, want the login form with prompt=login", loc)
	}
	tb.typeInto("Username", "erin")
	tb.typeInto("Password", alicePW)
	tb.clickAndLoad(`form[action="/login"] button[type=submit]`)
	if loc := tb.location(); loc != s.issuerURL+"/login/otp" {
		t.Fatalf("after the password the browser is on %s, want /login/otp\n%s", loc, tb.text())
	}
	tb.typeInto("Code", totpCode(t, secret))
	tb.clickAndLoad(`form[action="/login/otp"] button[type=submit]`)
	if loc := tb.location(); loc != vault {
		t.Fatalf("after the code the browser is on %s, want %s\n%s", loc, vault, tb.text())
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, erin") {
		t.Fatalf("the vault after the step-up:\n%s", txt)
	}
	access := tb.cookie("canopy")
	if access == nil {
		t.Fatal("no access cookie after the code")
	}
	if amr := checkToken(t, s, access.Value, "erin")["amr"]; !reflect.DeepEqual(amr, []any{"pwd", "otp"}) {
		t.Fatalf("amr = %v, want [pwd otp]", amr)
	}
}

// TestBrowserGroupRule: in Chromium, a user outside the group an app
// requires gets the 403 page naming the group; once an administrator adds
// them and their token is refreshed, the app opens.
func TestBrowserGroupRule(t *testing.T) {
	s := newStack(t, stackOptions{accessTTL: "2s", leeway: "0s"})
	port := freePort(t)
	p := start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", s.issuerURL,
		"--host", "admin."+s.domain, "--require-group", "admins", "--leeway", "0s")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", port), p)
	admin := fmt.Sprintf("http://admin.%s:%d/", s.domain, port)

	tb := newChrome(t)
	journey(t)
	signUpInBrowser(t, s, tb, "frank")
	tb.navigate(admin)
	if txt := tb.text(); !strings.Contains(txt, "You need to be in group admins") {
		t.Fatalf("outside the group the admin app shows:\n%s", txt)
	}
	if out, err := s.issuerCmd(t, "", "group", "add", "frank", "admins"); err != nil {
		t.Fatalf("group add: %v\n%s", err, out)
	}
	// The membership reaches the token at its next refresh.
	time.Sleep(2500 * time.Millisecond)
	tb.navigate(admin)
	if loc, txt := tb.location(), tb.text(); loc != admin || !strings.Contains(txt, "Hello, frank") {
		t.Fatalf("inside the group the browser is on %s:\n%s", loc, txt)
	}
	if groups := checkToken(t, s, tb.cookie("canopy").Value, "frank")["groups"]; !reflect.DeepEqual(groups, []any{"admins"}) {
		t.Fatalf("groups = %v, want [admins]", groups)
	}
}

// enrolTOTP sets up an authenticator app for the signed-in browser, whose
// password is alicePW, from the account page: it checks the page shows the
// key and its QR code and, once done, ten recovery codes; it returns the key.
func enrolTOTP(t *testing.T, tb *tab, issuerURL string) string {
	t.Helper()
	tb.navigate(issuerURL + "/account/totp")
	secret := eval[string](tb, `(document.querySelector("code.secret") || {}).textContent || ""`)
	if secret == "" || !eval[bool](tb, `!!document.querySelector('img[src^="data:image/png;base64,"]')`) {
		t.Fatalf("enrolment page shows no key or QR code:\n%s", tb.text())
	}
	first, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tb.typeInto("Code from the app", first)
	tb.typeInto("Your password, to confirm", alicePW)
	tb.clickAndLoad(`form[action="/account/totp"] button[type=submit]`)
	if n := eval[int](tb, `document.querySelectorAll("main li code").length`); n != 10 {
		t.Fatalf("after enrolment %d recovery codes are shown, want 10:\n%s", n, tb.text())
	}
	return secret
}
