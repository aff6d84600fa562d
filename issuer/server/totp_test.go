package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// TestTOTPEnrol: the account page's enrolment shows a QR code (a PNG data:
// URI) and the secret, refuses a wrong first code, and with a right one
// turns the factor on and shows ten recovery codes once. The code that
// confirmed enrolment cannot then sign in.
func TestTOTPEnrol(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")

	r := b.get("/account/totp")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `<img src="data:image/png;base64,iVBORw0KGgo`) {
		t.Fatalf("enrolment page: %d, want a PNG QR code\n%s", r.StatusCode, r.body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:") {
		t.Fatalf("CSP %q does not allow the data: QR code", csp)
	}
	secret, enrol := b.enrolForm(t)
	post := func(code, enrol string) *response {
		return b.post("/account/totp", url.Values{"code": {code}, "enrol": {enrol}, "password": {"correct horse"}, "csrf_token": {b.token()}})
	}
	wrong := h.codeAt(secret, 5)
	if r := post(wrong, enrol); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, codeFailed) {
		t.Fatalf("wrong first code: %d\n%s", r.StatusCode, r.body)
	}
	// An enrolment field cannot choose its secret, or outlive enrolTTL.
	forged := strings.Replace(enrol, secret, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1)
	if r := post(h.codeAt("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 0), forged); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("forged enrolment field: %d, want 303 back to a fresh form", r.StatusCode)
	}
	if _, err := h.store.TOTP(ctx, alice.ID); err == nil {
		t.Fatal("a refused enrolment turned the factor on")
	}
	first := h.codeAt(secret, 0)
	r = post(first, enrol)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("right first code: %d\n%s", r.StatusCode, r.body)
	}
	codes := regexp.MustCompile(`<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>`).FindAllStringSubmatch(r.body, -1)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10\n%s", len(codes), r.body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("recovery codes page Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	if n, _ := h.store.RecoveryCodesLeft(ctx, alice.ID); n != 10 {
		t.Fatalf("%d recovery codes stored, want 10", n)
	}
	if page := b.get("/"); !strings.Contains(page.body, "Authenticator app: <strong>on</strong>") || !strings.Contains(page.body, "<strong>10</strong>") {
		t.Fatalf("account page does not show the factor on with 10 codes:\n%s", page.body)
	}
	// A second enrolment while one is on goes back to the account page.
	if r := b.get("/account/totp"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("enrolment page with the factor on: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// The confirming code is spent.
	b2 := h.browser()
	b2.passwordStep("alice", "correct horse", "")
	if r := b2.code(first); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the enrolment code signed in: %d", r.StatusCode)
	}
	h.clock.Advance(30 * time.Second)
	if r := b2.code(h.codeAt(secret, 0)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the next step's code: %d\n%s", r.StatusCode, r.body)
	}
}

// TestTOTPEnrolNeedsRecentSignIn: a sign-in older than 10 minutes is sent to
// sign in again before it may add a factor.
func TestTOTPEnrolNeedsRecentSignIn(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	secret, enrol := b.enrolForm(t)
	h.clock.Advance(recentAuth + time.Second)
	if r := b.get("/refresh?return_to=%2F"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("refresh: %d", r.StatusCode)
	}
	want := "/login?prompt=login&return_to=" + url.QueryEscape(h.cfg.URL+"/account/totp")
	if r := b.get("/account/totp"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("stale GET /account/totp: %d %q, want 303 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	r := b.post("/account/totp", url.Values{"code": {h.codeAt(secret, 0)}, "enrol": {enrol}, "password": {"correct horse"}, "csrf_token": {b.token()}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("stale POST /account/totp: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if _, err := h.store.TOTP(context.Background(), alice.ID); err == nil {
		t.Fatal("a stale session turned the factor on")
	}
}

// TestTOTPLogin: with a factor on, the password alone creates no session; a
// right code does, with amr [pwd otp], and goes where the sign-in was
// going. The same code is refused the second time, in its window.
func TestTOTPLogin(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	secret := h.enableTOTP(alice)
	b := h.browser()
	returnTo := "http://alice.domain.localhost:" + h.port + "/page"
	b.passwordStep("alice", "correct horse", returnTo)
	if n := h.sessionCount(alice.ID); n != 0 {
		t.Fatalf("%d sessions after the password alone, want 0", n)
	}
	pending := h.srv.pendingCookie()
	if b.cookies[pending] == "" {
		t.Fatal("no pending sign-in cookie")
	}
	if r := b.get("/login/otp"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "alice") || !strings.Contains(r.body, `autocomplete="one-time-code"`) {
		t.Fatalf("GET /login/otp: %d\n%s", r.StatusCode, r.body)
	}
	code := h.codeAt(secret, 0)
	r := b.code(code)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != returnTo {
		t.Fatalf("code: %d %q, want 303 %q\n%s", r.StatusCode, r.Header.Get("Location"), returnTo, r.body)
	}
	if c := setCookies(r)[pending]; c == nil || c.MaxAge >= 0 {
		t.Error("the pending cookie was not cleared")
	}
	claims := b.claims()
	if !slices.Equal(claims.AMR, []string{"pwd", "otp"}) || claims.AuthTime != h.clock.Now().Unix() {
		t.Fatalf("token amr %q auth_time %d, want [pwd otp] at %d", claims.AMR, claims.AuthTime, h.clock.Now().Unix())
	}
	// amr survives refreshes.
	h.clock.Advance(time.Minute)
	b.get("/refresh?return_to=%2F")
	if c := b.claims(); !slices.Equal(c.AMR, []string{"pwd", "otp"}) || c.AuthTime != claims.AuthTime {
		t.Fatalf("after refresh: amr %q auth_time %d", c.AMR, c.AuthTime)
	}

	// The same code, in the same window, from another browser: refused.
	h.clock.Advance(-time.Minute)
	b2 := h.browser()
	b2.passwordStep("alice", "correct horse", "")
	if r := b2.code(code); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, codeFailed) {
		t.Fatalf("a reused code: %d\n%s", r.StatusCode, r.body)
	}
	if n := h.sessionCount(alice.ID); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// TestPendingSignIn: the pending state lasts 5 minutes, completes once, and
// cannot be forged or carried to another browser's password.
func TestPendingSignIn(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	bob := h.createUser("bob", "correct horse")
	aliceSecret := h.enableTOTP(alice)
	h.enableTOTP(bob)
	name := h.srv.pendingCookie()
	gone := func(t *testing.T, r *response) {
		t.Helper()
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Fatalf("status %d %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
		}
	}
	t.Run("expired", func(t *testing.T) {
		b := h.browser()
		b.passwordStep("alice", "correct horse", "")
		h.clock.Advance(pendingTTL)
		defer h.clock.Advance(time.Minute) // later subtests use fresh steps
		gone(t, b.code(h.codeAt(aliceSecret, 0)))
		if n := h.sessionCount(alice.ID); n != 0 {
			t.Fatalf("%d sessions", n)
		}
	})
	t.Run("used once", func(t *testing.T) {
		b := h.browser()
		b.passwordStep("alice", "correct horse", "")
		saved := b.cookies[name]
		if r := b.code(h.codeAt(aliceSecret, 0)); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("code: %d", r.StatusCode)
		}
		b.cookies[name] = saved
		h.clock.Advance(30 * time.Second)
		gone(t, b.code(h.codeAt(aliceSecret, 0)))
	})
	for _, tc := range []struct {
		name   string
		mangle func(v, bobs string) string
	}{
		// One character of the mac changed, always to another one (a fixed
		// "AA" was, one time in about a thousand, what the mac ended with).
		{"mac altered", func(v, _ string) string {
			c := byte('A')
			if v[len(v)-2] == c {
				c = 'B'
			}
			return v[:len(v)-2] + string(c) + v[len(v)-1:]
		}},
		{"expiry extended", func(v, _ string) string {
			p := strings.Split(v, ".")
			return p[0] + ".99999999999." + p[2]
		}},
		{"handle altered", func(v, _ string) string { return "A" + v[1:] }},
		{"another user's handle with this mac", func(v, bobs string) string {
			return strings.Split(bobs, ".")[0] + v[strings.Index(v, "."):]
		}},
		{"garbage", func(string, string) string { return "garbage" }},
		{"empty", func(string, string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.clock.Advance(30 * time.Second)
			b, other := h.browser(), h.browser()
			b.passwordStep("alice", "correct horse", "")
			other.passwordStep("bob", "correct horse", "")
			b.cookies[name] = tc.mangle(b.cookies[name], other.cookies[name])
			gone(t, b.get("/login/otp"))
			gone(t, b.code(h.codeAt(aliceSecret, 0)))
		})
	}
	if n := h.sessionCount(bob.ID); n != 0 {
		t.Fatalf("bob has %d sessions", n)
	}
}

// TestTOTPThrottle: wrong codes are throttled like passwords; while
// throttled even the right code waits; then it works.
func TestTOTPThrottle(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	secret := h.enableTOTP(alice)
	b := h.browser()
	b.passwordStep("alice", "correct horse", "")
	wrong := h.codeAt(secret, 7)
	statuses := []int{}
	for range 8 {
		statuses = append(statuses, b.code(wrong).StatusCode)
	}
	want := []int{401, 401, 401, 401, 401, 401, 429, 429}
	if !slices.Equal(statuses, want) {
		t.Fatalf("wrong codes: %v, want %v (5 free, then backoff)", statuses, want)
	}
	r := b.code(h.codeAt(secret, 0))
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("right code while throttled: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	h.clock.Advance(3 * time.Second)
	if r := b.code(h.codeAt(secret, 0)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("right code after the wait: %d\n%s", r.StatusCode, r.body)
	}
	events, _ := h.store.Events(context.Background(), alice.ID, 50)
	failed := 0
	for _, e := range events {
		if e.Kind == "second_factor_failed" {
			failed++
		}
	}
	if failed != 6 {
		t.Fatalf("%d second_factor_failed events, want 6", failed)
	}
}

// TestRecoveryCodeLogin: a recovery code replaces the app's code once, in
// any case and with or without its hyphen.
func TestRecoveryCodeLogin(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	h.enableTOTP(alice, "abcde-fghij", "kmnop-qrstu")
	b := h.browser()
	b.passwordStep("alice", "correct horse", "")
	if r := b.code("ABCDEFGHIJ"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %d\n%s", r.StatusCode, r.body)
	}
	if c := b.claims(); !slices.Equal(c.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("amr %q", c.AMR)
	}
	if n, _ := h.store.RecoveryCodesLeft(ctx, alice.ID); n != 1 {
		t.Fatalf("%d codes left, want 1", n)
	}
	b2 := h.browser()
	b2.passwordStep("alice", "correct horse", "")
	if r := b2.code("abcde-fghij"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a used recovery code: %d", r.StatusCode)
	}
	if r := b2.code("kmnop qrstu"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the other recovery code: %d\n%s", r.StatusCode, r.body)
	}
	if page := b2.get("/"); !strings.Contains(page.body, "Recovery code used") || !strings.Contains(page.body, "make new ones soon") {
		t.Fatalf("account page after using the codes:\n%s", page.body)
	}
	// New codes replace the old, shown once.
	r := b2.post("/account/recovery-codes", url.Values{"csrf_token": {b2.token()}, "password": {"correct horse"}})
	if r.StatusCode != http.StatusOK || strings.Count(r.body, "<li><code>") != 10 {
		t.Fatalf("new recovery codes: %d\n%s", r.StatusCode, r.body)
	}
	if n, _ := h.store.RecoveryCodesLeft(ctx, alice.ID); n != 10 {
		t.Fatalf("%d codes after making new ones, want 10", n)
	}
}

// TestTOTPRemove: turning the app off needs a sign-in from the last 10
// minutes; then password sign-ins need no code, and the codes are gone.
func TestTOTPRemove(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	alice := h.createUser("alice", "correct horse")
	secret := h.enableTOTP(alice, "abcde-fghij")
	b := h.browser()
	b.loginTOTP("alice", "correct horse", h.codeAt(secret, 0))
	h.clock.Advance(recentAuth + time.Second)
	b.get("/refresh?return_to=%2F")
	r := b.post("/account/totp/remove", url.Values{"csrf_token": {b.token()}, "password": {"correct horse"}})
	want := "/login?prompt=login&return_to=" + url.QueryEscape(h.cfg.URL+"/")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("stale removal: %d %q, want 303 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	if _, err := h.store.TOTP(ctx, alice.ID); err != nil {
		t.Fatalf("a stale session removed the factor: %v", err)
	}
	b.loginTOTP("alice", "correct horse", h.codeAt(secret, 0))
	if r := b.post("/account/totp/remove", url.Values{"csrf_token": {b.token()}, "password": {"correct horse"}}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("removal: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if _, err := h.store.TOTP(ctx, alice.ID); err == nil {
		t.Fatal("the factor is still on")
	}
	if n, _ := h.store.RecoveryCodesLeft(ctx, alice.ID); n != 0 {
		t.Fatalf("%d recovery codes left with no factor", n)
	}
	h.browser().login("alice", "correct horse")
	events, _ := h.store.Events(ctx, alice.ID, 50)
	if !slices.ContainsFunc(events, func(e store.Event) bool { return e.Kind == "totp_disabled" }) {
		t.Fatal("no totp_disabled event")
	}
}
