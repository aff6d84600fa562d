package e2e

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// addVirtualAuthenticator gives the tab a platform authenticator that
// holds passkeys and verifies its user at once, as a phone or laptop with a
// fingerprint reader does.
func (tb *tab) addVirtualAuthenticator() {
	tb.t.Helper()
	run(tb, "enable WebAuthn", func(ctx context.Context, _ *chromedp.Target) (cdp.Empty, error) {
		return chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{})
	})
	run(tb, "add a virtual authenticator", func(ctx context.Context, _ *chromedp.Target) (webauthn.AddVirtualAuthenticatorResult, error) {
		return chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
				HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
	})
}

// TestBrowserPasskey: in Chromium with a virtual authenticator, a user adds
// a passkey on the account's passkeys page (through /static/passkeys.js,
// under the issuer's CSP), signs out, and signs in with the passkey alone
// from the login page: back on their page, with a token whose amr is [hwk].
func TestBrowserPasskey(t *testing.T) {
	s := newStack(t, stackOptions{})
	tb := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	signUpInBrowser(t, s, tb, "alice")
	tb.addVirtualAuthenticator()

	// Account management rests on the host-only session cookie, which no
	// other host under the cookie domain receives.
	sc := tb.cookie("canopy-session")
	if sc == nil || sc.Domain != s.domain || !sc.HTTPOnly || sc.SameSite != network.CookieSameSiteLax || sc.Path != "/" {
		t.Fatalf("session cookie after sign-up = %+v, want host-only on %s, HttpOnly, SameSite=Lax, Path=/", sc, s.domain)
	}

	tb.navigate(s.issuerURL + "/account/passkeys")
	tb.typeInto("Name of the new passkey", "Virtual laptop")
	tb.typeInto("Your password, to confirm", alicePW) // adding a factor needs the password now
	tb.clickAndLoad("#passkey-add")
	if txt := tb.text(); !strings.Contains(txt, "Virtual laptop") || !strings.Contains(txt, "not used yet") {
		t.Fatalf("passkeys page after adding one:\n%s\nconsole:\n%s", txt, strings.Join(tb.consoleLines(), "\n"))
	}

	// Sign out, then sign in with the passkey alone.
	tb.navigate(s.issuerURL + "/logout")
	tb.clickAndLoad(`form[action="/logout"] button[type=submit]`)
	tb.navigate(alice)
	if !tb.onLoginForm() {
		t.Fatalf("after sign-out %s shows no login form", tb.location())
	}
	tb.clickAndLoad("#passkey-signin")
	if loc := tb.location(); loc != alice {
		t.Fatalf("after the passkey sign-in the browser is on %s, want %s\n%s\nconsole:\n%s", loc, alice, tb.text(),
			strings.Join(tb.consoleLines(), "\n"))
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("alice's page:\n%s", txt)
	}
	access := tb.cookie("canopy")
	if access == nil {
		t.Fatal("no access cookie after the passkey sign-in")
	}
	if amr := checkToken(t, s, access.Value, "alice")["amr"]; !reflect.DeepEqual(amr, []any{"hwk"}) {
		t.Fatalf("amr = %v, want [hwk]", amr)
	}

	// A password change offers to sign out everywhere else, ticked, and
	// says which factors remain.
	tb.navigate(s.issuerURL + "/")
	if !eval[bool](tb, `document.querySelector('input[name="signout_others"]').checked`) {
		t.Fatal(`"Sign out everywhere else" is not ticked by default`)
	}
	tb.typeInto("Current password", alicePW)
	tb.typeInto("New password", alicePW+" again")
	tb.clickAndLoad(`form[action="/account/password"] button[type=submit]`)
	if txt := tb.text(); !strings.Contains(txt, "Every other session has been signed out") || !strings.Contains(txt, "1 passkey") {
		t.Fatalf("password change confirmation:\n%s", txt)
	}
	for _, line := range tb.consoleLines() {
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "exception") {
			t.Errorf("browser console: %s", line)
		}
	}
}
