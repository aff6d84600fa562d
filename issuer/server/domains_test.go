package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// TestDomainDiscovery: each domain's host publishes its own issuer and
// cookie domain and the same key set; the OpenID Provider is the primary's.
func TestDomainDiscovery(t *testing.T) {
	h := newHarness(t, domainsOptions(options{}))
	b := h.mbrowser()
	var jwks []string
	for _, tc := range []struct{ url, domain string }{
		{h.cfg.URL, "domain.localhost"}, {h.otherURL(), "other.localhost"}, {h.thirdURL(), "third.localhost"},
	} {
		r := b.do(http.MethodGet, tc.url+wire.PathDiscovery, nil)
		var d wire.ProviderDiscovery
		if err := json.Unmarshal([]byte(r.body), &d); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("%s discovery: %d %v", tc.url, r.StatusCode, err)
		}
		if d.Issuer != tc.url || d.CookieDomain != tc.domain || d.RefreshURI != tc.url+wire.PathRefresh || d.LoginURI != tc.url+wire.PathLogin {
			t.Errorf("%s discovery: issuer %q, cookie domain %q, refresh %q, login %q", tc.url, d.Issuer, d.CookieDomain, d.RefreshURI, d.LoginURI)
		}
		if primary := tc.url == h.cfg.URL; (d.AuthorizationEndpoint != "") != primary {
			t.Errorf("%s discovery: authorization_endpoint %q (primary %v)", tc.url, d.AuthorizationEndpoint, primary)
		}
		jwks = append(jwks, b.do(http.MethodGet, tc.url+wire.PathJWKS, nil).body)
	}
	if jwks[0] != jwks[1] || jwks[0] != jwks[2] {
		t.Error("the domains publish different key sets")
	}
	// The account page is the primary's; a form post elsewhere is refused.
	r := b.do(http.MethodGet, h.otherURL()+"/?x=1", nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != h.cfg.URL+"/?x=1" {
		t.Errorf("GET / on other.localhost: %d to %q, want 303 to the primary", r.StatusCode, r.Header.Get("Location"))
	}
	if r := b.do(http.MethodPost, h.otherURL()+"/login", url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Errorf("POST /login on other.localhost: %d, want 404", r.StatusCode)
	}
}

// TestHop: signed in at the primary, a browser opening a page under
// other.localhost gets a session there with no form, in four redirects,
// with a token of that domain only, linked to the primary session, with
// its auth_time and amr.
func TestHop(t *testing.T) {
	var logs lockedBuffer
	h := newHarness(t, domainsOptions(options{logTo: &logs}))
	h.createUser("alice", "correct horse battery")
	b := h.mbrowser()
	b.login("alice", "correct horse battery")
	primaryTok := b.access("domain.localhost")
	pc := claimsOf(t, primaryTok)

	hop := b.hopTo(h.appURL())
	if hop.left != h.appURL() {
		t.Fatalf("hop ended at %q (last status %d: %s), want %s", hop.left, hop.last.StatusCode, hop.last.body, h.appURL())
	}
	// other/refresh → primary/authorize → other/handover → the app.
	if len(hop.steps) != 3 {
		t.Errorf("hop took %d issuer responses, want 3", len(hop.steps))
	}
	last := hop.steps[len(hop.steps)-1]
	if rp := last.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("handover Referrer-Policy %q, want no-referrer", rp)
	}
	// Neither the code nor the hop's state reaches the log.
	handover, _ := url.Parse(hop.steps[1].Header.Get("Location"))
	code := handover.Query().Get("code")
	if code == "" || strings.Contains(logs.String(), code) || strings.Contains(logs.String(), "app.other.localhost") {
		t.Errorf("the log carries the hop's code or return URL (code %q):\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "path="+pathHandover) {
		t.Errorf("the log shows no hand-over request:\n%s", logs.String())
	}
	tok := b.access("other.localhost")
	oc := claimsOf(t, tok)
	if store.RootSessionID(oc.SessionID) != pc.SessionID || oc.SessionID == pc.SessionID {
		t.Errorf("other domain's sid %q is not linked to %q", oc.SessionID, pc.SessionID)
	}
	if oc.AuthTime != pc.AuthTime || !slices.Equal(oc.AMR, pc.AMR) || oc.Subject != pc.Subject {
		t.Errorf("linked token auth_time %d amr %v sub %s, want %d %v %s", oc.AuthTime, oc.AMR, oc.Subject, pc.AuthTime, pc.AMR, pc.Subject)
	}
	if iss, aud := string(oc.Raw["iss"]), string(oc.Raw["aud"]); iss != `"`+h.otherURL()+`"` || aud != `"other.localhost"` {
		t.Errorf("linked token iss %s aud %s", iss, aud)
	}

	// pkg/sso configured for each domain accepts its own token only.
	ks := keySetOf(t, b.do(http.MethodGet, h.cfg.URL+wire.PathJWKS, nil).body)
	verifier := func(issuer, aud string) *sso.Verifier {
		v, err := sso.NewVerifier(ks, sso.Config{Issuer: issuer, Audience: aud, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	vPrimary, vOther := verifier(h.cfg.URL, "domain.localhost"), verifier(h.otherURL(), "other.localhost")
	ctx := context.Background()
	if _, err := vOther.Verify(ctx, tok); err != nil {
		t.Errorf("other.localhost's verifier refused its token: %v", err)
	}
	if _, err := vPrimary.Verify(ctx, primaryTok); err != nil {
		t.Errorf("the primary's verifier refused its token: %v", err)
	}
	if _, err := vPrimary.Verify(ctx, tok); err == nil {
		t.Error("the primary's verifier accepted other.localhost's token")
	}
	if _, err := vOther.Verify(ctx, primaryTok); err == nil {
		t.Error("other.localhost's verifier accepted the primary's token")
	}

	// The linked session refreshes on its own host, with its own token.
	r := b.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(h.appURL()), nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != h.appURL() {
		t.Fatalf("refresh on other.localhost: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if claimsOf(t, b.access("other.localhost")).SessionID != oc.SessionID {
		t.Error("refresh on other.localhost changed the session")
	}
	// Its refresh token is no good on the primary's host.
	stolen := b.jars["other.localhost"][h.cfg.Cookies().Refresh]
	thief := h.mbrowser()
	thief.jars["domain.localhost"] = map[string]string{h.cfg.Cookies().Refresh: stolen}
	if r := thief.do(http.MethodPost, h.cfg.URL+"/refresh", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("other.localhost's refresh token on the primary: %d, want 401", r.StatusCode)
	}

	// The account page lists the linked session.
	acct := b.do(http.MethodGet, h.cfg.URL+"/", nil)
	if !strings.Contains(acct.body, "on other.localhost") {
		t.Errorf("account page does not list the linked session:\n%s", acct.body)
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// keySetOf parses a JWKS into a static key set.
func keySetOf(t *testing.T, body string) sso.KeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var keep []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.Algorithm == wire.AlgEdDSA || k.Algorithm == wire.AlgES256 {
			keep = append(keep, k)
		}
	}
	ks, err := sso.NewStaticKeySet(keep...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestHopSignInFirst: with no session anywhere, opening a page under
// other.localhost signs in once at the primary and lands back there.
func TestHopSignInFirst(t *testing.T) {
	h := newHarness(t, domainsOptions(options{}))
	h.createUser("bob", "correct horse battery")
	b := h.mbrowser()
	hop := b.hopTo(h.appURL())
	if hop.left != "" || hop.last.StatusCode != http.StatusOK || !strings.Contains(hop.last.body, `name="password"`) {
		t.Fatalf("hop without a session: status %d, left %q; want the primary's sign-in form", hop.last.StatusCode, hop.left)
	}
	loginURL := hop.steps[len(hop.steps)-1].Request.URL
	if !strings.HasPrefix(hop.steps[len(hop.steps)-1].Request.Host, "domain.localhost") || loginURL.Path != "/login" {
		t.Fatalf("sign-in form at %s%s, want the primary's /login", hop.last.Request.Host, loginURL.Path)
	}
	returnTo := hidden(hop.last.body, "return_to")
	r := b.do(http.MethodPost, h.cfg.URL+"/login", url.Values{"username": {"bob"}, "password": {"correct horse battery"},
		"csrf_token": {hidden(hop.last.body, "csrf_token")}, "return_to": {returnTo}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.StatusCode, r.body)
	}
	next, _ := url.Parse(h.cfg.URL)
	loc, _ := next.Parse(r.Header.Get("Location"))
	back := b.follow(loc.String())
	if back.left != h.appURL() {
		t.Fatalf("after signing in: left at %q (status %d: %s)", back.left, back.last.StatusCode, back.last.body)
	}
	if b.access("other.localhost") == "" {
		t.Fatal("no access cookie on other.localhost")
	}
}

// TestHopFamily: the linked sessions end with their family, however it ends.
func TestHopFamily(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, h *harness, b *mbrowser, u store.User)
	}{
		{"sign-out on the other domain", func(t *testing.T, h *harness, b *mbrowser, _ store.User) {
			tok := hidden(b.do(http.MethodGet, h.otherURL()+"/logout", nil).body, "csrf_token")
			r := b.do(http.MethodPost, h.otherURL()+"/logout", url.Values{"csrf_token": {tok}})
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout on other.localhost: %d %s", r.StatusCode, r.body)
			}
		}},
		{"sign-out on the primary", func(t *testing.T, h *harness, b *mbrowser, _ store.User) {
			tok := hidden(b.do(http.MethodGet, h.cfg.URL+"/logout", nil).body, "csrf_token")
			b.do(http.MethodPost, h.cfg.URL+"/logout", url.Values{"csrf_token": {tok}})
		}},
		{"refresh token reuse on the other domain", func(t *testing.T, h *harness, b *mbrowser, _ store.User) {
			old := b.jars["other.localhost"][h.cfg.Cookies().Refresh]
			b.do(http.MethodPost, h.otherURL()+"/refresh", nil)
			h.clock.Advance(h.cfg.RefreshGrace + 2*time.Second)
			replay := h.mbrowser()
			replay.jars["other.localhost"] = map[string]string{h.cfg.Cookies().Refresh: old}
			if r := replay.do(http.MethodPost, h.otherURL()+"/refresh", nil); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("replayed refresh token: %d", r.StatusCode)
			}
		}},
		{"user disabled", func(t *testing.T, h *harness, _ *mbrowser, u store.User) {
			if err := h.srv.store.SetDisabled(context.Background(), u.ID, true, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"password change from the CLI", func(t *testing.T, h *harness, _ *mbrowser, u store.User) {
			if err := h.srv.store.SetPassword(context.Background(), u.ID, "x", "", h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"sign out others from another browser", func(t *testing.T, h *harness, _ *mbrowser, _ store.User) {
			other := h.mbrowser()
			other.login("carol", "correct horse battery")
			acct := other.do(http.MethodGet, h.cfg.URL+"/", nil)
			r := other.do(http.MethodPost, h.cfg.URL+"/account/signout", url.Values{"sid": {"others"}, "csrf_token": {hidden(acct.body, "csrf_token")}})
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign out others: %d %s", r.StatusCode, r.body)
			}
		}},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, domainsOptions(options{}))
			u := h.createUser("carol", "correct horse battery")
			b := h.mbrowser()
			b.login("carol", "correct horse battery")
			if hop := b.hopTo(h.appURL()); hop.left != h.appURL() {
				t.Fatalf("hop: %q", hop.left)
			}
			if hop := b.follow(h.thirdURL() + "/refresh?return_to=" + url.QueryEscape("http://app.third.localhost/")); hop.left != "http://app.third.localhost/" {
				t.Fatalf("hop to third: %q", hop.left)
			}
			sids := []string{claimsOf(t, b.access("domain.localhost")).SessionID, claimsOf(t, b.access("other.localhost")).SessionID,
				claimsOf(t, b.access("third.localhost")).SessionID}
			tc.end(t, h, b, u)
			for _, sid := range sids {
				if h.sessionActive(sid) {
					t.Errorf("session %s still active", sid)
				}
			}
			// Every host's feeds carry it: the first lists each sid, the
			// second each sid or a user-level entry for its subject.
			for _, base := range []string{h.cfg.URL, h.otherURL(), h.thirdURL()} {
				feed := b.do(http.MethodGet, base+wire.PathRevocation, nil).body
				v2 := b.do(http.MethodGet, base+wire.PathRevocationV2, nil).body
				for _, sid := range sids {
					if !strings.Contains(feed, sid) {
						t.Errorf("revocation feed on %s lacks %s: %s", base, sid, feed)
					}
					if !strings.Contains(v2, sid) && !strings.Contains(v2, u.ID) {
						t.Errorf("second revocation feed on %s covers neither %s nor its user: %s", base, sid, v2)
					}
				}
			}
		})
	}
}

// TestHopReplacesSession: a different person signing in at the primary is
// who the next hop brings, and the other domain's earlier session ends.
func TestHopReplacesSession(t *testing.T) {
	h := newHarness(t, domainsOptions(options{}))
	h.createUser("alice", "correct horse battery")
	h.createUser("bob", "correct horse battery")
	b := h.mbrowser()
	b.login("alice", "correct horse battery")
	b.hopTo(h.appURL())
	aliceSID := claimsOf(t, b.access("other.localhost")).SessionID

	// Sign-in at other.localhost with prompt=login goes to the primary's form.
	hop := b.follow(h.otherURL() + "/login?prompt=login&return_to=" + url.QueryEscape(h.appURL()))
	if hop.last.StatusCode != http.StatusOK || !strings.Contains(hop.last.body, `name="password"`) {
		t.Fatalf("prompt=login hop: %d %s", hop.last.StatusCode, hop.last.body)
	}
	r := b.do(http.MethodPost, h.cfg.URL+"/login", url.Values{"username": {"bob"}, "password": {"correct horse battery"},
		"csrf_token": {hidden(hop.last.body, "csrf_token")}, "return_to": {hidden(hop.last.body, "return_to")}})
	loc, _ := url.Parse(h.cfg.URL)
	next, _ := loc.Parse(r.Header.Get("Location"))
	if back := b.follow(next.String()); back.left != h.appURL() {
		t.Fatalf("after bob signed in: %q (%d %s)", back.left, back.last.StatusCode, back.last.body)
	}
	bob := claimsOf(t, b.access("other.localhost"))
	if bob.Raw["preferred_username"] == nil || string(bob.Raw["preferred_username"]) != `"bob"` {
		t.Errorf("other.localhost's session is %s, want bob", bob.Raw["preferred_username"])
	}
	if h.sessionActive(aliceSID) {
		t.Error("alice's session on other.localhost outlived the hop that replaced it")
	}
}

// TestHopHTTPS: on https the hop cookie is __Host- prefixed, Secure,
// HttpOnly, SameSite=Lax and host-only, and the hop completes.
func TestHopHTTPS(t *testing.T) {
	h := newHarness(t, options{https: true, mutate: func(c *config.Config) {
		c.OtherURLs = []string{"https://other.org"}
	}})
	h.createUser("alice", "correct horse battery")
	b := h.mbrowser()
	b.login("alice", "correct horse battery")
	back := "https://app.other.org/"
	start := b.do(http.MethodGet, "https://other.org/refresh?return_to="+url.QueryEscape(back), nil)
	ck := setCookies(start)["__Host-canopy-hop"]
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Domain != "" || ck.Path != "/" {
		t.Fatalf("hop cookie %+v", ck)
	}
	hop := b.follow(start.Header.Get("Location"))
	if hop.left != back {
		t.Fatalf("https hop ended at %q: %d %s", hop.left, hop.last.StatusCode, hop.last.body)
	}
	access := setCookies(hop.last)["__Secure-canopy"]
	if access == nil || access.Domain != "other.org" || !access.Secure {
		t.Fatalf("access cookie on other.org: %+v", access)
	}
	if c := claimsOf(t, access.Value); string(c.Raw["iss"]) != `"https://other.org"` || string(c.Raw["aud"]) != `"other.org"` {
		t.Errorf("token iss %s aud %s", c.Raw["iss"], c.Raw["aud"])
	}
}
