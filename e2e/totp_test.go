package e2e

import (
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var secretRe = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
var enrolRe = regexp.MustCompile(`name="enrol" value="([^"]+)"`)

// totpCode is the code of secret for the step after now's: the step now's
// code may already have been spent.
func totpCode(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, time.Now().Add(30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTPStepUp: an app that requires a one-time code sends a password
// session to sign in again; a user who set up an authenticator app from
// the account page signs in with password and code, and the app admits the
// new session, whose token says amr [pwd otp].
func TestTOTPStepUp(t *testing.T) {
	s := newStack(t, stackOptions{relying: []string{"--require-amr", "otp"}})
	app := s.appURL()
	b := newBrowser(t)
	if r := s.signUp(t, b, "erin", alicePW, app); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}

	// Enrol from the account page.
	page := b.navigate(s.issuerURL + "/account/totp")
	m, e := secretRe.FindStringSubmatch(page.body), enrolRe.FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil || e == nil || !strings.Contains(page.body, "data:image/png;base64,") {
		t.Fatalf("enrolment page: %d\n%s", page.status, page.body)
	}
	secret := m[1]
	first, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := b.post(s.issuerURL+"/account/totp", url.Values{"code": {first}, "enrol": {e[1]}, "password": {alicePW}, "csrf_token": {csrf(t, page.body)}}, s.issuerURL)
	if r.status != http.StatusOK || strings.Count(r.body, "<li><code>") != 10 {
		t.Fatalf("enrolment: %d\n%s", r.status, r.body)
	}

	// The password session is sent to sign in again.
	r = b.navigate(app)
	want := s.issuerURL + "/login?prompt=login&return_to=" + url.QueryEscape(app)
	if r.status != http.StatusSeeOther || r.location != want {
		t.Fatalf("password session: %d %q, want 303 %q", r.status, r.location, want)
	}
	if r = s.signIn(t, b, "erin", alicePW, app); r.status != http.StatusSeeOther || r.location != "/login/otp" {
		t.Fatalf("password step: %d %q, want 303 /login/otp", r.status, r.location)
	}
	page = b.navigate(s.issuerURL + "/login/otp")
	if page.status != http.StatusOK {
		t.Fatalf("GET /login/otp: %d", page.status)
	}
	r = b.post(s.issuerURL+"/login/otp", url.Values{"code": {totpCode(t, secret)}, "csrf_token": {csrf(t, page.body)}}, s.issuerURL)
	if r.status != http.StatusSeeOther || r.location != app {
		t.Fatalf("code step: %d %q\n%s", r.status, r.location, r.body)
	}
	if r = b.navigate(app); r.status != http.StatusOK || !strings.Contains(r.body, "erin") {
		t.Fatalf("app after the step-up: %d\n%s", r.status, r.body)
	}
	claims := checkToken(t, s, b.cookie(app, "canopy").Value, "erin")
	if !reflect.DeepEqual(claims["amr"], []any{"pwd", "otp"}) {
		t.Fatalf("amr = %v, want [pwd otp]", claims["amr"])
	}
}
