package site_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/relying/site"
)

// TestForwardAuthOriginalURL sends every row of
// testdata/requests/forward_auth_urls.json to the forward-auth endpoint from
// a trusted proxy, with alice's cookie.
func TestForwardAuthOriginalURL(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	var table struct {
		Rows []struct {
			Name    string      `json:"name"`
			Headers [][2]string `json:"headers"`
			Want    int         `json:"want"`
		} `json:"rows"`
	}
	loadTable(t, "forward_auth_urls.json", &table)
	h := testSite(t, doc, corpusClient(t, doc), "{username}.domain.localhost",
		site.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for _, row := range table.Rows {
		t.Run(row.Name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://relying.internal"+site.AuthPath, nil)
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Cookie", "canopy="+tokens["alice"].token)
			for _, kv := range row.Headers {
				r.Header.Set(kv[0], kv[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != row.Want {
				t.Fatalf("status %d, want %d", rec.Code, row.Want)
			}
			if row.Want == http.StatusOK && rec.Header().Get(site.HeaderUser) != "alice" {
				t.Fatalf("X-Canopy-User %q", rec.Header().Get(site.HeaderUser))
			}
		})
	}
}

// TestSignOutLinkBehindTLSProxy: behind a trusted TLS-terminating proxy the
// owner's page links to sign-out with an https return URL, which the issuer's
// validator accepts; from an untrusted peer the headers are not believed
// (red-team 14).
func TestSignOutLinkBehindTLSProxy(t *testing.T) {
	doc := loadCorpus(t)
	tokens := mintNamedTokens(t, doc)
	h := testSite(t, doc, corpusClient(t, doc), "{username}.domain.localhost",
		site.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for _, tc := range []struct{ remote, want string }{
		{"127.0.0.1:40000", "return_to=https%3A%2F%2Falice.domain.localhost%2F"},
		{"192.0.2.1:40000", "return_to=http%3A%2F%2Falice.domain.localhost%2F"},
	} {
		r := httptest.NewRequest("GET", "http://alice.domain.localhost/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Cookie", "canopy="+tokens["alice"].token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("from %s: status %d, want a sign-out link with %s: %.400s", tc.remote, rec.Code, tc.want, rec.Body)
		}
	}
}
