package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
)

// conditional checks that r has an ETag and that asking again with it (and
// its weak form) answers 304 with no body, while another tag answers 200.
func conditional(t *testing.T, b *browser, target string, r *response) {
	t.Helper()
	etag := r.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 4 {
		t.Fatalf("%s: ETag %q, want a quoted tag", target, etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
		nm := b.do(request{target: target, header: http.Header{"If-None-Match": {inm}}})
		if nm.StatusCode != http.StatusNotModified || nm.body != "" {
			t.Errorf("%s with If-None-Match %s: status %d, body %q; want 304, empty", target, inm, nm.StatusCode, nm.body)
		}
	}
	if other := b.do(request{target: target, header: http.Header{"If-None-Match": {`"other"`}}}); other.StatusCode != http.StatusOK {
		t.Errorf("%s with another tag: status %d, want 200", target, other.StatusCode)
	}
}

func TestJWKS(t *testing.T) {
	h := newHarness(t, options{mutate: func(c *config.Config) { c.JWKSMaxAge = 7 * time.Minute }})
	b := h.browser()
	r := b.get("/.well-known/jwks.json")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=420" {
		t.Errorf("Cache-Control %q, want public, max-age=420 (the configured --jwks-max-age)", cc)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) < 2 { // active and next
		t.Errorf("%d keys, want the active and the next key", len(set.Keys))
	}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %v publishes its private part %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || k["kid"] == "" || k["alg"] == "" {
			t.Errorf("key %v lacks use=sig, kid or alg", k)
		}
	}
	conditional(t, b, "/.well-known/jwks.json", r)
}

func TestDiscovery(t *testing.T) {
	for _, mode := range []struct {
		name  string
		https bool
	}{{"dev", false}, {"https", true}} {
		h := newHarness(t, options{https: mode.https})
		u := h.cfg.URL
		want := map[string]any{
			"issuer":                                u,
			"jwks_uri":                              u + "/.well-known/jwks.json",
			"canopy_cookie_name":                    h.cfg.Cookies().Access,
			"canopy_cookie_domain":                  h.cfg.CookieDomain,
			"canopy_revocation_uri":                 u + "/sessions/revoked",
			"canopy_refresh_uri":                    u + "/refresh",
			"canopy_login_uri":                      u + "/login",
			"id_token_signing_alg_values_supported": nil, // checked below
			"authorization_endpoint":                u + "/authorize",
			"token_endpoint":                        u + "/token",
			"userinfo_endpoint":                     u + "/userinfo",
			"end_session_endpoint":                  u + "/end-session",
		}
		t.Run(mode.name, func(t *testing.T) {
			r := h.browser().get("/.well-known/openid-configuration")
			if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d, Content-Type %q", r.StatusCode, r.Header.Get("Content-Type"))
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatal(err)
			}
			for field, v := range want {
				if _, ok := got[field]; !ok {
					t.Errorf("no %s", field)
				} else if v != nil && got[field] != v {
					t.Errorf("%s = %v, want %v", field, got[field], v)
				}
			}
			algs, _ := got["id_token_signing_alg_values_supported"].([]any)
			if !slices.Contains(algs, any(h.cfg.Alg)) || len(algs) == 0 || algs[0] != "RS256" {
				t.Errorf("id_token_signing_alg_values_supported %v: want RS256 first, and %s", algs, h.cfg.Alg)
			}
			if pkce, _ := got["code_challenge_methods_supported"].([]any); len(pkce) != 1 || pkce[0] != "S256" {
				t.Errorf("code_challenge_methods_supported %v, want [S256]", pkce)
			}
		})
	}
}

// TestRevokedFeed: a logged-out session is listed until 10 minutes after the
// latest exp of any access token issued in it, with an ETag; a live one never.
func TestRevokedFeed(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("alice", "correct horse")
	live, gone := h.browser(), h.browser()
	live.login("alice", "correct horse")
	gone.login("alice", "correct horse")
	h.clock.Advance(time.Minute)
	if r := gone.get("/refresh?return_to=%2F"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("refresh: status %d", r.StatusCode)
	}
	latest := claimsOf(t, gone.cookies[h.cfg.Cookies().Access])
	feed := func() (*response, map[string]int64) {
		r := h.browser().get("/sessions/revoked")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("feed: status %d", r.StatusCode)
		}
		var out struct {
			Revoked []struct {
				SID   string `json:"sid"`
				Until int64  `json:"until"`
			} `json:"revoked"`
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Revoked == nil {
			t.Fatalf("feed %s: %v", r.body, err)
		}
		m := map[string]int64{}
		for _, e := range out.Revoked {
			m[e.SID] = e.Until
		}
		return r, m
	}
	before, list := feed()
	if len(list) != 0 {
		t.Fatalf("feed lists %v before any logout", list)
	}
	if r := gone.post("/logout", url.Values{"csrf_token": {gone.token()}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", r.StatusCode)
	}
	r, list := feed()
	if until, ok := list[latest.SessionID]; !ok || until != latest.Expiry {
		t.Errorf("feed %v: want %s until %d (the refreshed token's exp)", list, latest.SessionID, latest.Expiry)
	}
	if _, ok := list[live.sid()]; ok {
		t.Errorf("feed lists the live session %s", live.sid())
	}
	if r.Header.Get("ETag") == before.Header.Get("ETag") {
		t.Error("the ETag did not change with the list")
	}
	conditional(t, h.browser(), "/sessions/revoked", r)

	// Still listed 10 minutes after until, then gone.
	h.clock.Advance(time.Unix(latest.Expiry, 0).Sub(h.clock.Now()) + 9*time.Minute)
	if _, list = feed(); len(list) != 1 {
		t.Errorf("9 minutes after until: feed %v, want the session", list)
	}
	h.clock.Advance(2 * time.Minute)
	if _, list = feed(); len(list) != 0 {
		t.Errorf("11 minutes after until: feed %v, want empty", list)
	}
}
