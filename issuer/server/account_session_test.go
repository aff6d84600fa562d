package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sessionCookieName is the account cookie of the harness's scheme.
func (h *harness) sessionCookieName() string { return h.srv.sessionCookie() }

// TestSessionCookie: every way of signing in sets the host-only account
// cookie, and logout clears it.
func TestSessionCookie(t *testing.T) {
	for _, https := range []bool{false, true} {
		h := newHarness(t, options{https: https, noThrottle: true})
		alice := h.createUser("alice", "correct horse")
		name := h.sessionCookieName()
		wantName := map[bool]string{false: "canopy-session", true: "__Host-canopy-session"}[https]
		if name != wantName {
			t.Fatalf("https=%v: cookie name %q, want %q", https, name, wantName)
		}
		checkSet := func(how string, r *response) {
			t.Helper()
			c := setCookies(r)[name]
			if c == nil || c.Value == "" {
				t.Fatalf("https=%v %s: no %s cookie set; Set-Cookie: %q", https, how, name, r.Header.Values("Set-Cookie"))
			}
			if c.Domain != "" || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != https ||
				c.MaxAge < int((h.cfg.SessionTTL-time.Minute)/time.Second) {
				t.Errorf("https=%v %s: cookie %+v, want host-only, Path=/, HttpOnly, SameSite=Lax, Secure=%v, the session's lifetime", https, how, c, https)
			}
		}
		b := h.browser()
		checkSet("login", b.login("alice", "correct horse"))
		r := b.post("/logout", url.Values{"csrf_token": {b.token()}})
		if c := setCookies(r)[name]; c == nil || c.MaxAge >= 0 || c.Domain != "" || c.Path != "/" {
			t.Errorf("https=%v logout: %s not cleared host-only on /: %+v", https, name, c)
		}
		if https {
			continue // the rest does not depend on the scheme
		}
		b = h.browser()
		checkSet("register", b.post("/register", url.Values{"username": {"bob"}, "password": {"correct horse"}, "csrf_token": {b.token()}}))

		secret := h.enableTOTP(alice)
		b = h.browser()
		b.passwordStep("alice", "correct horse", "")
		checkSet("second factor", b.code(h.codeAt(secret, 0)))

		k := newSoftKey(t)
		b.addPasskeyWithPassword(k, "Laptop", "correct horse")
		checkSet("passkey sign-in", h.browser().passkeyLogin(k, ceremonyInput{}))
	}
}

// accountTarget is one account page or action, as a stolen access token
// would try it.
type accountTarget struct {
	name   string
	method string
	path   string
	form   url.Values // a POST form, the csrf token added
	json   string     // a JSON POST body instead
}

var accountTargets = []accountTarget{
	{name: "account page", method: http.MethodGet, path: "/"},
	{name: "authenticator enrolment form", method: http.MethodGet, path: "/account/totp"},
	{name: "passkeys page", method: http.MethodGet, path: "/account/passkeys"},
	{name: "sign out others", method: http.MethodPost, path: "/account/signout", form: url.Values{"sid": {"others"}}},
	{name: "password change", method: http.MethodPost, path: "/account/password",
		form: url.Values{"current_password": {"correct horse"}, "new_password": {"battery staple"}, "signout_others": {"on"}}},
	{name: "authenticator enrolment", method: http.MethodPost, path: "/account/totp", form: url.Values{"code": {"123456"}, "password": {"correct horse"}}},
	{name: "authenticator removal", method: http.MethodPost, path: "/account/totp/remove", form: url.Values{"password": {"correct horse"}}},
	{name: "new recovery codes", method: http.MethodPost, path: "/account/recovery-codes", form: url.Values{"password": {"correct horse"}}},
	{name: "passkey removal", method: http.MethodPost, path: "/account/passkeys/remove", form: url.Values{"id": {"x"}, "password": {"correct horse"}}},
	{name: "passkey registration", method: http.MethodPost, path: "/webauthn/register/begin", json: `{"name":"mine","password":"correct horse"}`},
	{name: "passkey registration finish", method: http.MethodPost, path: "/webauthn/register/finish", json: `{}`},
}

func (b *browser) send(tc accountTarget) *response {
	b.h.t.Helper()
	switch {
	case tc.json != "":
		return b.jsonPost(tc.path, []byte(tc.json))
	case tc.method == http.MethodPost:
		form := url.Values{"csrf_token": {b.token()}}
		for k, v := range tc.form {
			form[k] = v
		}
		return b.post(tc.path, form)
	}
	return b.get(tc.path)
}

// TestStolenAccessToken: the access cookie reaches every host under the
// cookie domain (and relying's --forward-token hands it to upstreams), so
// on its own it must open no account page and change nothing: not even in
// the first minutes after the victim's sign-in. Each attempt is sent to sign
// in again.
func TestStolenAccessToken(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	alice := h.createUser("alice", "correct horse")
	victim := h.browser()
	victim.login("alice", "correct horse")
	stolen := victim.cookies[h.cfg.Cookies().Access]
	for _, tc := range accountTargets {
		t.Run(tc.name, func(t *testing.T) {
			thief := h.browser()
			thief.token() // the thief's own CSRF cookie and form token
			thief.cookies[h.cfg.Cookies().Access] = stolen
			r := thief.send(tc)
			if tc.json != "" {
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401\n%s", r.StatusCode, r.body)
				}
				return
			}
			loc := r.Header.Get("Location")
			if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?prompt=login&return_to=") {
				t.Fatalf("status %d to %q, want 303 to /login?prompt=login\n%s", r.StatusCode, loc, r.body)
			}
		})
	}
	if !h.sessionActive(victim.sid()) {
		t.Fatal("the victim's session was ended by the thief")
	}
	if keys, _ := h.store.Passkeys(context.Background(), alice.ID); len(keys) != 0 {
		t.Fatalf("the thief registered %d passkeys", len(keys))
	}
	u, _ := h.store.UserByID(context.Background(), alice.ID)
	if h.srv.hasher.Verify(context.Background(), u.PasswordHash, "correct horse") != nil {
		t.Fatal("the thief changed the password")
	}
}

// TestSignedInBeforeUpgrade: a browser with access and refresh cookies but
// no session cookie (signed in before the cookie existed) is sent to sign
// in again, not refused; after that the account page opens.
func TestSignedInBeforeUpgrade(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	delete(b.cookies, h.sessionCookieName())
	want := "/login?prompt=login&return_to=" + url.QueryEscape(h.cfg.URL+"/")
	if r := b.get("/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("GET /: %d to %q, want 303 to %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	if r := b.get(want); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("GET %s: %d, want the form even with a session", want, r.StatusCode)
	}
	b.login("alice", "correct horse")
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET / after signing in again: %d", r.StatusCode)
	}
	// A stranger is simply asked to sign in.
	want = "/login?return_to=" + url.QueryEscape(h.cfg.URL+"/")
	if r := h.browser().get("/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("anonymous GET /: %d to %q, want 303 to %q", r.StatusCode, r.Header.Get("Location"), want)
	}
}

// TestForgedSessionCookie: the session cookie is bound to its session by
// an HMAC under a server secret; a sid alone, another session's MAC or a
// mangled value open nothing.
func TestForgedSessionCookie(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	h.createUser("alice", "correct horse")
	h.createUser("mallory", "battery staple")
	a, m := h.browser(), h.browser()
	a.login("alice", "correct horse")
	m.login("mallory", "battery staple")
	name := h.sessionCookieName()
	_, mMAC, _ := strings.Cut(m.cookies[name], ".")
	for _, v := range []string{a.sid(), a.sid() + ".", a.sid() + "." + mMAC, a.sid() + "." + strings.Repeat("A", 43), "." + mMAC, a.cookies[name] + "x"} {
		b := h.browser()
		b.cookies[name] = v
		if r := b.get("/"); r.StatusCode != http.StatusSeeOther {
			t.Errorf("session cookie %q: GET / %d, want 303", v, r.StatusCode)
		}
	}
}

// TestFactorChangesNeedPassword: adding or removing a second factor, or
// making new recovery codes, needs the password typed into the same form
// (or ceremony), not only a recent sign-in.
func TestFactorChangesNeedPassword(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	alice := h.createUser("alice", "correct horse")
	secret := h.enableTOTP(alice, "abcde-fghij")
	b := h.browser()
	b.loginTOTP("alice", "correct horse", h.codeAt(secret, 0))
	k := newSoftKey(t)
	for _, pw := range []string{"", "wrong horse"} {
		begin := b.jsonPost("/webauthn/register/begin", []byte(`{"name":"Laptop","password":"`+pw+`"}`))
		if begin.StatusCode != http.StatusUnauthorized || !strings.Contains(begin.body, `"error":"password"`) {
			t.Fatalf("register begin with password %q: %d %s, want 401 password", pw, begin.StatusCode, begin.body)
		}
		for _, tc := range []struct{ path, field string }{
			{"/account/totp/remove", ""}, {"/account/recovery-codes", ""}, {"/account/passkeys/remove", "id"},
		} {
			form := url.Values{"csrf_token": {b.token()}}
			if pw != "" {
				form.Set("password", pw)
			}
			if tc.field != "" {
				form.Set(tc.field, "x")
			}
			if r := b.post(tc.path, form); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "password") {
				t.Errorf("%s with password %q: %d, want 401 and a word about the password", tc.path, pw, r.StatusCode)
			}
		}
	}
	if _, err := h.store.TOTP(context.Background(), alice.ID); err != nil {
		t.Fatalf("the authenticator app went without the password: %v", err)
	}
	if n, _ := h.store.RecoveryCodesLeft(context.Background(), alice.ID); n != 1 {
		t.Fatalf("recovery codes replaced without the password: %d left", n)
	}
	b.addPasskeyWithPassword(k, "Laptop", "correct horse")
	r := b.post("/account/recovery-codes", url.Values{"csrf_token": {b.token()}, "password": {"correct horse"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("new recovery codes with the password: %d", r.StatusCode)
	}
	r = b.post("/account/passkeys/remove", url.Values{"csrf_token": {b.token()}, "id": {b64(k.id)}, "password": {"correct horse"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("passkey removal with the password: %d", r.StatusCode)
	}
	r = b.post("/account/totp/remove", url.Values{"csrf_token": {b.token()}, "password": {"correct horse"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("authenticator removal with the password: %d", r.StatusCode)
	}
	// Enrolment: the confirming form carries the password with the code.
	secret2, enrol := b.enrolForm(t)
	r = b.post("/account/totp", url.Values{"csrf_token": {b.token()}, "enrol": {enrol}, "code": {h.codeAt(secret2, 1)}})
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "password") {
		t.Fatalf("enrolment without the password: %d", r.StatusCode)
	}
	r = b.post("/account/totp", url.Values{"csrf_token": {b.token()}, "enrol": {enrol}, "code": {h.codeAt(secret2, 1)}, "password": {"correct horse"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("enrolment with the password: %d\n%s", r.StatusCode, r.body)
	}
}

// TestPasswordChangeChoice: the change offers to sign out everywhere else
// (on by default) and says which second factors remain.
func TestPasswordChangeChoice(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	alice := h.createUser("alice", "correct horse")
	b, other := h.browser(), h.browser()
	b.login("alice", "correct horse")
	other.login("alice", "correct horse")
	page := b.get("/")
	if !strings.Contains(page.body, `name="signout_others" checked`) {
		t.Fatalf("the account page offers no checked sign-out-everywhere box:\n%s", page.body)
	}
	change := func(from, to string, signOut bool) *response {
		f := url.Values{"csrf_token": {b.token()}, "current_password": {from}, "new_password": {to}}
		if signOut {
			f.Set("signout_others", "on")
		}
		return b.post("/account/password", f)
	}
	r := change("correct horse", "battery staple", false)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "no second factor") {
		t.Fatalf("change keeping sessions: %d\n%s", r.StatusCode, r.body)
	}
	if !h.sessionActive(other.sid()) || !h.sessionActive(b.sid()) {
		t.Fatal("a change without the box ended a session")
	}
	h.enableTOTP(alice)
	r = change("battery staple", "correct horse", true)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "authenticator app") || !strings.Contains(r.body, "signed out") {
		t.Fatalf("change signing out: %d\n%s", r.StatusCode, r.body)
	}
	if h.sessionActive(other.sid()) || !h.sessionActive(b.sid()) {
		t.Fatal("the box did not end exactly the other sessions")
	}
	var n int
	events, _ := h.store.Events(context.Background(), alice.ID, 0)
	for _, e := range events {
		if e.Kind == "password_change" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d password_change events, want 2", n)
	}
}

// TestTossedAccessCookie: a sibling host can set a second access cookie
// (another path, the cookie domain). Two signature-valid tokens of
// different sessions, even one of them expired, are ambiguous at the
// issuer: no "already signed in", and logout ends the browser's own session
// (its session cookie), never the tossed one.
func TestTossedAccessCookie(t *testing.T) {
	h := newHarness(t, options{noThrottle: true})
	alice := h.createUser("alice", "correct horse")
	h.createUser("mallory", "battery staple")
	m := h.browser()
	m.login("mallory", "battery staple")
	expired := m.cookies[h.cfg.Cookies().Access]
	h.clock.Advance(h.cfg.AccessTTL + time.Minute)
	valid := h.browser()
	valid.login("mallory", "battery staple")
	tossed := valid.cookies[h.cfg.Cookies().Access]

	a := h.browser()
	a.login("alice", "correct horse")
	access, refresh := h.cfg.Cookies().Access, h.cfg.Cookies().Refresh
	own := a.cookies[access]
	csrfTok := a.token()
	base := h.cfg.Cookies().CSRF + "=" + a.cookies[h.cfg.Cookies().CSRF] + "; " + refresh + "=" + a.cookies[refresh]
	withSession := base + "; " + h.sessionCookieName() + "=" + a.cookies[h.sessionCookieName()]
	returnTo := url.QueryEscape("http://alice.domain.localhost:" + h.port + "/")
	for _, tc := range []struct {
		name, cookies string
		want          int
	}{
		{"own token alone", base + "; " + access + "=" + own, http.StatusSeeOther},
		{"tossed expired token first", base + "; " + access + "=" + expired + "; " + access + "=" + own, http.StatusOK},
		{"tossed expired token last", base + "; " + access + "=" + own + "; " + access + "=" + expired, http.StatusOK},
		{"tossed valid token first", base + "; " + access + "=" + tossed + "; " + access + "=" + own, http.StatusOK},
		{"session cookie wins", withSession + "; " + access + "=" + tossed + "; " + access + "=" + own, http.StatusSeeOther},
	} {
		c := tc.cookies
		r := a.do(request{target: "/login?return_to=" + returnTo, cookies: &c})
		if r.StatusCode != tc.want {
			t.Errorf("%s: GET /login %d to %q, want %d", tc.name, r.StatusCode, r.Header.Get("Location"), tc.want)
		}
		if tc.want == http.StatusOK && strings.Contains(r.body, "mallory") {
			t.Errorf("%s: the login page names the tossed session's user", tc.name)
		}
		r = a.do(request{target: "/logout", cookies: &c})
		if strings.Contains(r.body, "mallory") {
			t.Errorf("%s: the logout page names the tossed session's user", tc.name)
		}
	}
	c := withSession + "; " + access + "=" + tossed + "; " + access + "=" + own
	r := a.do(request{method: http.MethodPost, target: "/logout", form: url.Values{"csrf_token": {csrfTok}}, cookies: &c})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	if h.sessionActive(claimsOf(t, own).SessionID) {
		t.Error("logout left the browser's own session alive")
	}
	if !h.sessionActive(claimsOf(t, tossed).SessionID) {
		t.Error("logout ended the tossed cookie's session")
	}
	if ev, _ := h.store.Events(context.Background(), "", 1); len(ev) != 1 || ev[0].Kind != "logout" || ev[0].UserID != alice.ID {
		t.Errorf("logout event = %+v, want alice's", ev)
	}
}

// addPasskeyWithPassword registers k, typing the password into the ceremony.
func (b *browser) addPasskeyWithPassword(k *softKey, name, pw string) {
	b.h.t.Helper()
	begin := b.jsonPost("/webauthn/register/begin", []byte(`{"name":"`+name+`","password":"`+pw+`"}`))
	if begin.StatusCode != http.StatusOK {
		b.h.t.Fatalf("register begin: %d %s", begin.StatusCode, begin.body)
	}
	if r := b.jsonPost("/webauthn/register/finish", k.create(begin.body, b.h.origin(), ceremonyInput{})); r.StatusCode != http.StatusOK {
		b.h.t.Fatalf("register finish: %d %s", r.StatusCode, r.body)
	}
}
