package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// headerPages are requests covering every kind of response: pages, forms
// refused, redirects, JSON, static files, errors. signedIn requests carry a
// session.
var headerPages = []struct {
	name     string
	signedIn bool
	req      func(b *browser) request
}{
	{"login form", false, func(*browser) request { return request{target: "/login"} }},
	{"register form", false, func(*browser) request { return request{target: "/register"} }},
	{"logout form", false, func(*browser) request { return request{target: "/logout"} }},
	{"account page", true, func(*browser) request { return request{target: "/"} }},
	{"account page, anonymous redirect", false, func(*browser) request { return request{target: "/"} }},
	{"refresh redirect", true, func(*browser) request { return request{target: "/refresh?return_to=%2F"} }},
	{"login refused by csrf", false, func(*browser) request {
		return request{method: http.MethodPost, target: "/login", form: url.Values{"username": {"a"}}}
	}},
	{"login failed", false, func(b *browser) request {
		return request{method: http.MethodPost, target: "/login",
			form: url.Values{"username": {"nobody"}, "password": {"wrong horse"}, "csrf_token": {b.token()}}}
	}},
	{"register invalid", false, func(b *browser) request {
		return request{method: http.MethodPost, target: "/register",
			form: url.Values{"username": {"-"}, "password": {"x"}, "csrf_token": {b.token()}}}
	}},
	{"signout refused by csrf", true, func(*browser) request {
		return request{method: http.MethodPost, target: "/account/signout", form: url.Values{"sid": {"others"}}}
	}},
	{"not found", false, func(*browser) request { return request{target: "/no/such/page"} }},
	{"method not allowed", false, func(*browser) request { return request{method: http.MethodPut, target: "/login"} }},
	{"body too large", false, func(*browser) request {
		return request{method: http.MethodPost, target: "/login", form: url.Values{"x": {strings.Repeat("x", 70<<10)}}}
	}},
	{"jwks", false, func(*browser) request { return request{target: "/.well-known/jwks.json"} }},
	{"discovery", false, func(*browser) request { return request{target: "/.well-known/openid-configuration"} }},
	{"revocation feed", false, func(*browser) request { return request{target: "/sessions/revoked"} }},
	{"refresh API without a session", false, func(*browser) request { return request{method: http.MethodPost, target: "/refresh"} }},
	{"refresh preflight", false, func(*browser) request {
		return request{method: http.MethodOptions, target: "/refresh", header: http.Header{
			"Origin": {"http://app.domain.localhost"}, "Access-Control-Request-Method": {"POST"}}}
	}},
	{"healthz", false, func(*browser) request { return request{target: "/healthz"} }},
	{"readyz", false, func(*browser) request { return request{target: "/readyz"} }},
	{"stylesheet", false, func(*browser) request { return request{target: "/static/canopy.css"} }},
}

// TestSecurityHeaders: every response carries the security headers; HTML is
// never cached; HSTS (with includeSubDomains) is sent only over https.
func TestSecurityHeaders(t *testing.T) {
	for _, mode := range []struct {
		name  string
		https bool
	}{{"dev", false}, {"https", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, options{https: mode.https})
			h.createUser("alice", "correct horse")
			for _, p := range headerPages {
				t.Run(p.name, func(t *testing.T) {
					b := h.browser()
					if p.signedIn {
						b.login("alice", "correct horse")
					}
					r := b.do(p.req(b))
					if r.StatusCode >= 500 {
						t.Fatalf("status %d", r.StatusCode)
					}
					checkSecurityHeaders(t, r, mode.https)
				})
			}
		})
	}
}

func checkSecurityHeaders(t *testing.T, r *response, https bool) {
	t.Helper()
	csp := r.Header.Get("Content-Security-Policy")
	switch {
	case csp == "":
		t.Error("no Content-Security-Policy")
	case strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval"):
		t.Errorf("CSP allows unsafe code: %s", csp)
	case !strings.Contains(csp, "frame-ancestors 'none'"):
		t.Errorf("CSP lacks frame-ancestors 'none': %s", csp)
	case !strings.Contains(csp, "form-action "):
		t.Errorf("CSP lacks form-action: %s", csp)
	case !strings.Contains(csp, "default-src 'none'") && !strings.Contains(csp, "default-src 'self'"):
		t.Errorf("CSP lacks a restrictive default-src: %s", csp)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s %q, want %q", name, got, want)
		}
	}
	switch rp := r.Header.Get("Referrer-Policy"); rp {
	case "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin":
	default:
		t.Errorf("Referrer-Policy %q", rp)
	}
	hsts := r.Header.Get("Strict-Transport-Security")
	if https && (!strings.Contains(hsts, "includeSubDomains") || !strings.Contains(hsts, "max-age=31536000")) {
		t.Errorf("https: Strict-Transport-Security %q, want max-age=31536000; includeSubDomains", hsts)
	}
	if !https && hsts != "" {
		t.Errorf("http development issuer sent Strict-Transport-Security %q", hsts)
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("HTML page with Cache-Control %q, want no-store", cc)
		}
	}
}
