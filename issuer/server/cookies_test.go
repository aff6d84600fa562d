package server

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// cookieWant is what SPEC.md's cookie table fixes for one cookie. maxAge 0
// means "the session's remaining lifetime".
type cookieWant struct {
	name     string
	domain   bool // Domain = the cookie domain; otherwise host-only
	secure   bool
	sameSite http.SameSite
	maxAge   int
}

// TestCookies: names and attributes in both modes, at login, at refresh (the
// Max-Age follows the session's remaining lifetime) and at logout (each
// cookie is cleared with the Domain and Path it was set with).
func TestCookies(t *testing.T) {
	tests := []struct {
		name                  string
		https                 bool
		access, refresh, csrf cookieWant
	}{
		{"dev", false,
			cookieWant{"canopy", true, false, http.SameSiteLaxMode, 0},
			cookieWant{"canopy-refresh", false, false, http.SameSiteLaxMode, 0},
			cookieWant{"canopy-csrf", false, false, http.SameSiteStrictMode, 3600}},
		{"https", true,
			cookieWant{"__Secure-canopy", true, true, http.SameSiteLaxMode, 0},
			cookieWant{"__Host-canopy-refresh", false, true, http.SameSiteLaxMode, 0},
			cookieWant{"__Host-canopy-csrf", false, true, http.SameSiteStrictMode, 3600}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{https: tc.https})
			h.createUser("alice", "correct horse")
			b := h.browser()
			form := b.get("/login")
			check(t, h, "login form", form, tc.csrf, 0)

			r := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {hidden(form.body, "csrf_token")}})
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: status %d", r.StatusCode)
			}
			session := int(h.cfg.SessionTTL / time.Second)
			check(t, h, "login", r, tc.access, session)
			check(t, h, "login", r, tc.refresh, session)
			check(t, h, "login", r, tc.csrf, 0)

			h.clock.Advance(time.Hour)
			r = b.get("/refresh?return_to=%2F")
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("refresh: status %d", r.StatusCode)
			}
			check(t, h, "refresh", r, tc.access, session-3600)
			check(t, h, "refresh", r, tc.refresh, session-3600)

			r = b.post("/logout", url.Values{"csrf_token": {b.token()}})
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: status %d", r.StatusCode)
			}
			check(t, h, "logout", r, tc.access, -1)
			check(t, h, "logout", r, tc.refresh, -1)
			for _, name := range []string{tc.access.name, tc.refresh.name} {
				if _, ok := b.cookies[name]; ok {
					t.Errorf("logout left %s in the browser", name)
				}
			}
		})
	}
}

// check finds want's cookie in r and compares its attributes; maxAge is the
// expected Max-Age (-1: cleared), or 0 to use want's.
func check(t *testing.T, h *harness, when string, r *response, want cookieWant, maxAge int) {
	t.Helper()
	c := setCookies(r)[want.name]
	if c == nil {
		t.Errorf("%s: no Set-Cookie for %s (got %q)", when, want.name, r.Header.Values("Set-Cookie"))
		return
	}
	if maxAge == 0 {
		maxAge = want.maxAge
	}
	domain := ""
	if want.domain {
		domain = h.cfg.CookieDomain
	}
	if c.Domain != domain {
		t.Errorf("%s: %s Domain %q, want %q", when, want.name, c.Domain, domain)
	}
	if c.Path != "/" {
		t.Errorf("%s: %s Path %q, want /", when, want.name, c.Path)
	}
	if c.Secure != want.secure {
		t.Errorf("%s: %s Secure %v, want %v", when, want.name, c.Secure, want.secure)
	}
	if !c.HttpOnly {
		t.Errorf("%s: %s is not HttpOnly", when, want.name)
	}
	if c.SameSite != want.sameSite {
		t.Errorf("%s: %s SameSite %v, want %v", when, want.name, c.SameSite, want.sameSite)
	}
	if c.MaxAge != maxAge {
		t.Errorf("%s: %s Max-Age %d, want %d", when, want.name, c.MaxAge, maxAge)
	}
	if maxAge > 0 && c.Value == "" {
		t.Errorf("%s: %s is empty", when, want.name)
	}
}
