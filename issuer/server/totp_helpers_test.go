package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/canopy-sso/canopy/issuer/otpcode"
	"github.com/canopy-sso/canopy/issuer/store"
)

// totpOpts are RFC 6238's defaults as authenticator apps use them: the
// tests compute codes with the library directly, not through otpcode.
var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// codeAt is the code of secret for the step `delta` steps from the clock's.
func (h *harness) codeAt(secret string, delta int) string {
	h.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, h.clock.Now().Add(time.Duration(delta)*30*time.Second), totpOpts)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// enableTOTP gives u an authenticator app directly in the store, as a
// finished enrolment would, with the recovery codes given.
func (h *harness) enableTOTP(u store.User, recovery ...string) string {
	h.t.Helper()
	key, err := otpcode.NewKey("domain.localhost", u.Username)
	if err != nil {
		h.t.Fatal(err)
	}
	var hashes []string
	for _, c := range recovery {
		n, ok := otpcode.NormalizeRecovery(c)
		if !ok {
			h.t.Fatalf("recovery code %q is malformed", c)
		}
		hashes = append(hashes, otpcode.HashRecovery(n))
	}
	if err := h.store.EnableTOTP(context.Background(), store.TOTP{UserID: u.ID, Secret: key.Secret, CreatedAt: h.clock.Now()}, hashes); err != nil {
		h.t.Fatal(err)
	}
	return key.Secret
}

// passwordStep posts the password form and expects to be sent to the
// second step.
func (b *browser) passwordStep(name, pw, returnTo string) {
	b.h.t.Helper()
	r := b.post("/login", url.Values{"username": {name}, "password": {pw}, "csrf_token": {b.token()}, "return_to": {returnTo}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/otp" {
		b.h.t.Fatalf("password step: %d %q, want 303 /login/otp\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if c := setCookies(r)[b.h.cfg.Cookies().Access]; c != nil {
		b.h.t.Fatal("the password step set an access cookie: no session may exist before the second factor")
	}
}

// code posts a code to the second step.
func (b *browser) code(code string) *response {
	b.h.t.Helper()
	return b.post("/login/otp", url.Values{"code": {code}, "csrf_token": {b.token()}})
}

// loginTOTP signs in with password and code and fails unless it succeeds.
func (b *browser) loginTOTP(name, pw, code string) {
	b.h.t.Helper()
	b.passwordStep(name, pw, "")
	if r := b.code(code); r.StatusCode != http.StatusSeeOther {
		b.h.t.Fatalf("code step: status %d, want 303\n%s", r.StatusCode, r.body)
	}
}

var secretRe = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)

// enrolForm opens /account/totp and returns the secret shown and the enrol field.
func (b *browser) enrolForm(t *testing.T) (secret, enrol string) {
	t.Helper()
	r := b.get("/account/totp")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /account/totp: %d\n%s", r.StatusCode, r.body)
	}
	m := secretRe.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", r.body)
	}
	return m[1], hidden(r.body, "enrol")
}
