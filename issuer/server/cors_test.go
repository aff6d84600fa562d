package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// corsCases are Origins a fetch() to POST /refresh may carry. {port} is the
// issuer's port. allowed: the issuer's scheme, and the cookie domain or a
// host under it, on any port.
var corsCases = []struct {
	name    string
	https   bool
	origin  string
	allowed bool
}{
	{"issuer itself", false, "http://domain.localhost:{port}", true},
	{"per-user host", false, "http://alice.domain.localhost:8081", true},
	{"fixed host without a port", false, "http://app.domain.localhost", true},
	{"deeper host, odd port", false, "http://a.b.domain.localhost:1", true},
	{"https origin in development", false, "https://alice.domain.localhost", false},
	{"domain as a prefix", false, "http://domain.localhost.evil.com", false},
	{"domain as a suffix without a dot", false, "http://evildomain.localhost", false},
	{"another .localhost name", false, "http://evil.localhost", false},
	{"bare localhost", false, "http://localhost:8081", false},
	{"loopback address", false, "http://127.0.0.1:8081", false},
	{"trailing dot", false, "http://alice.domain.localhost.", false},
	{"userinfo", false, "http://evil.com@alice.domain.localhost", false},
	{"with a path", false, "http://alice.domain.localhost/x", false},
	{"null", false, "null", false},
	{"wildcard", false, "*", false},
	{"not a URL", false, "alice.domain.localhost", false},
	{"bad port", false, "http://alice.domain.localhost:x", false},
	{"production subdomain", true, "https://alice.domain.com", true},
	{"production apex, port", true, "https://domain.com:8443", true},
	{"production over http", true, "http://alice.domain.com", false},
	{"production look-alike", true, "https://alice.domain.com.evil.com", false},
}

// TestRefreshCORS: POST /refresh serves credentialed fetch() from hosts
// under the cookie domain on the issuer's scheme, echoing the Origin (never
// "*"), and refuses every other Origin without rotating anything.
func TestRefreshCORS(t *testing.T) {
	harnesses := map[bool]*harness{false: newHarness(t, options{}), true: newHarness(t, options{https: true})}
	for _, h := range harnesses {
		h.createUser("alice", "correct horse")
	}
	for _, tc := range corsCases {
		t.Run(tc.name, func(t *testing.T) {
			h := harnesses[tc.https]
			origin := strings.ReplaceAll(tc.origin, "{port}", h.port)
			b := h.browser()
			b.login("alice", "correct horse")
			before := b.cookies[h.cfg.Cookies().Refresh]

			pre := b.do(request{method: http.MethodOptions, target: "/refresh", header: http.Header{
				"Origin": {origin}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}})
			r := b.do(request{method: http.MethodPost, target: "/refresh", header: http.Header{"Origin": {origin}}})
			for _, resp := range []*response{pre, r} {
				if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
					t.Errorf("%s: Vary %q lacks Origin", resp.Request.Method, resp.Header.Values("Vary"))
				}
			}
			if !tc.allowed {
				for _, resp := range []*response{pre, r} {
					if resp.StatusCode != http.StatusForbidden {
						t.Errorf("%s: status %d, want 403", resp.Request.Method, resp.StatusCode)
					}
					if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
						t.Errorf("%s: Access-Control-Allow-Origin %q for a refused origin", resp.Request.Method, got)
					}
					if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
						t.Errorf("%s: Access-Control-Allow-Credentials %q for a refused origin", resp.Request.Method, got)
					}
				}
				if len(setCookies(r)) != 0 || b.cookies[h.cfg.Cookies().Refresh] != before {
					t.Errorf("a refused origin rotated the session: %q", r.Header.Values("Set-Cookie"))
				}
				return
			}
			if pre.StatusCode != http.StatusNoContent && pre.StatusCode != http.StatusOK {
				t.Errorf("preflight: status %d", pre.StatusCode)
			}
			if m := pre.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
				t.Errorf("preflight: Access-Control-Allow-Methods %q lacks POST", m)
			}
			if hd := pre.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(strings.ToLower(hd), "content-type") {
				t.Errorf("preflight: Access-Control-Allow-Headers %q lacks Content-Type", hd)
			}
			if r.StatusCode != http.StatusNoContent {
				t.Errorf("POST: status %d, want 204; body %s", r.StatusCode, r.body)
			}
			for _, resp := range []*response{pre, r} {
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", resp.Request.Method, got, origin)
				}
				if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
					t.Errorf("%s: Access-Control-Allow-Credentials %q, want true", resp.Request.Method, got)
				}
			}
			set := setCookies(r)
			if set[h.cfg.Cookies().Access] == nil || set[h.cfg.Cookies().Refresh] == nil || b.cookies[h.cfg.Cookies().Refresh] == before {
				t.Errorf("POST: no new cookies: %q", r.Header.Values("Set-Cookie"))
			}
		})
	}
}

// TestRefreshAPI: without an Origin (same-origin or not a browser) the API
// is served; without a session it answers 401 JSON, still readable by an
// allowed origin.
func TestRefreshAPI(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("alice", "correct horse")
	tests := []struct {
		name     string
		signedIn bool
		origin   string
		status   int
	}{
		{"no Origin, signed in", true, "", http.StatusNoContent},
		{"no Origin, anonymous", false, "", http.StatusUnauthorized},
		{"allowed Origin, anonymous", false, "http://alice.domain.localhost:8081", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			if tc.signedIn {
				b.login("alice", "correct horse")
			}
			var hdr http.Header
			if tc.origin != "" {
				hdr = http.Header{"Origin": {tc.origin}}
			}
			r := b.do(request{method: http.MethodPost, target: "/refresh", header: hdr})
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.StatusCode, tc.status, r.body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != tc.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.origin)
			}
			if tc.status == http.StatusNoContent {
				if setCookies(r)[h.cfg.Cookies().Access] == nil {
					t.Error("204 without a new access cookie")
				}
				return
			}
			var body struct {
				Error string `json:"error"`
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error != "unauthenticated" {
				t.Errorf("body %s, want {\"error\":\"unauthenticated\",…}", r.body)
			}
			if c := r.Header.Get("Cache-Control"); c != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", c)
			}
		})
	}
}
