package e2e

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestGroupRule: relying --require-group admins admits a member of admins
// (whose token carries the group) and gives anyone else a 403 that names the
// group, as a page or as JSON; groups are given with `issuer user add --group`
// and `issuer group add`, and reach the token at its next refresh.
func TestGroupRule(t *testing.T) {
	s := newStack(t, stackOptions{relying: []string{"--require-group", "admins"}})
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "bob", "--group", "admins,ops"); err != nil {
		t.Fatalf("user add bob: %v\n%s", err, out)
	}
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "carol"); err != nil {
		t.Fatalf("user add carol: %v\n%s", err, out)
	}
	app := s.appURL()

	bob := newBrowser(t)
	if r := s.signIn(t, bob, "bob", alicePW, app); r.status != http.StatusSeeOther || r.location != app {
		t.Fatalf("bob's sign-in: %d %q", r.status, r.location)
	}
	if r := bob.navigate(app); r.status != http.StatusOK || !strings.Contains(r.body, "bob") {
		t.Fatalf("app as bob (in admins): %d\n%s", r.status, r.body)
	}
	claims := checkToken(t, s, bob.cookie(app, "canopy").Value, "bob")
	if !reflect.DeepEqual(claims["groups"], []any{"admins", "ops"}) {
		t.Fatalf("bob's groups claim = %v, want [admins ops]", claims["groups"])
	}

	carol := newBrowser(t)
	if r := s.signIn(t, carol, "carol", alicePW, app); r.status != http.StatusSeeOther {
		t.Fatalf("carol's sign-in: %d", r.status)
	}
	r := carol.navigate(app)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "You need to be in group admins.") {
		t.Fatalf("app as carol (in no group): %d\n%s", r.status, r.body)
	}
	if r := carol.api(http.MethodGet, app+"api"); r.status != http.StatusForbidden || strings.TrimSpace(r.body) != `{"error":"forbidden"}` {
		t.Fatalf("API as carol: %d %s", r.status, r.body)
	}
	// Forward auth applies the rule too: 403 for carol, 200 with the headers for bob.
	if r := carol.api(http.MethodGet, app+".canopy/auth"); r.status != http.StatusForbidden {
		t.Fatalf("forward auth as carol: %d", r.status)
	}
	if r := bob.api(http.MethodGet, app+".canopy/auth"); r.status != http.StatusOK || r.header.Get("X-Canopy-User") != "bob" {
		t.Fatalf("forward auth as bob: %d %q", r.status, r.header.Get("X-Canopy-User"))
	}
	if _, ok := checkToken(t, s, carol.cookie(app, "canopy").Value, "carol")["groups"]; ok {
		t.Fatal("carol's token has a groups claim, though she is in no group")
	}

	// Added to admins: admitted once her token is refreshed.
	if out, err := s.issuerCmd(t, "", "group", "add", "carol", "admins"); err != nil {
		t.Fatalf("group add: %v\n%s", err, out)
	}
	if r := carol.navigate(s.issuerURL + "/refresh?return_to=" + url.QueryEscape(app)); r.status != http.StatusSeeOther || r.location != app {
		t.Fatalf("refresh: %d %q", r.status, r.location)
	}
	if r := carol.navigate(app); r.status != http.StatusOK || !strings.Contains(r.body, "carol") {
		t.Fatalf("app as carol after group add and refresh: %d\n%s", r.status, r.body)
	}
}

// TestStepUpRule: relying --require-amr otp sends a password session to sign
// in again (prompt=login, back to the page); when that sign-in is still a
// password alone, the page says what is needed instead of sending the
// browser round again. An API request gets 401 insufficient_user_authentication.
func TestStepUpRule(t *testing.T) {
	s := newStack(t, stackOptions{relying: []string{"--require-amr", "otp,hwk"}})
	app := s.appURL()
	b := newBrowser(t)
	if r := s.signUp(t, b, "dave", alicePW, app); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	r := b.navigate(app)
	want := s.issuerURL + "/login?prompt=login&return_to=" + url.QueryEscape(app)
	if r.status != http.StatusSeeOther || r.location != want {
		t.Fatalf("password session on an otp page: %d %q, want 303 %q", r.status, r.location, want)
	}
	if r := b.api(http.MethodGet, app+"api"); r.status != http.StatusUnauthorized ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) ||
		!strings.Contains(r.body, `"required_amr":["otp","hwk"]`) {
		t.Fatalf("API step-up: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
	}
	fa := b.api(http.MethodGet, app+".canopy/auth")
	if fa.status != http.StatusUnauthorized || !strings.Contains(fa.header.Get("X-Canopy-Login-Url"), "/login?prompt=login&return_to=") {
		t.Fatalf("forward auth step-up: %d %q", fa.status, fa.header.Get("X-Canopy-Login-Url"))
	}
	page := b.navigate(r.location)
	if page.status != http.StatusOK || !strings.Contains(page.body, "confirm it is you") {
		t.Fatalf("login with prompt=login: %d\n%s", page.status, page.body)
	}
	if r := s.signIn(t, b, "dave", alicePW, app); r.status != http.StatusSeeOther || r.location != app {
		t.Fatalf("second sign-in: %d %q", r.status, r.location)
	}
	r = b.navigate(app)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "a one-time code or a passkey") {
		t.Fatalf("after a password-only step-up: %d\n%s", r.status, r.body)
	}
}
