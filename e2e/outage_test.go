package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestIssuerOutage kills the issuer. Relying services keep accepting valid
// tokens, through a failed key-set refresh (the relying service's own log
// shows it) and for a token they verify for the first time during the outage;
// an expired session on a navigation gets the "sign-in service unavailable"
// page instead of a redirect into the dead issuer; a relying service started
// during the outage answers 503 until the issuer is back and then works
// without a restart; after the restart refresh works again.
func TestIssuerOutage(t *testing.T) {
	t.Parallel()
	// --jwks-max-age 1s: the relying services refresh the key set at their
	// floor, every 10 s, so one refresh fails during the outage.
	s := newStack(t, stackOptions{accessTTL: "15s", leeway: "0s", extra: []string{"--jwks-max-age", "1s"}})
	alice := s.userURL("alice")
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, alice); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	tok := b.cookie(alice, "canopy").Value
	if r := b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("page before the outage: %d", r.status)
	}
	// A second token the relying service has not seen yet (the browser keeps
	// the rotated refresh token).
	c := rawClient()
	next, unseen := s.mustRefresh(t, c, b.cookie(s.issuerURL, "canopy-refresh").Value, alice)
	iu, _ := url.Parse(s.issuerURL)
	b.jar.SetCookies(iu, []*http.Cookie{{Name: "canopy-refresh", Value: next, Path: "/"}})
	const fetchFailed = "key set fetch failed"
	if strings.Contains(s.users.Output(), fetchFailed) {
		t.Fatal("a key-set fetch failed before the outage")
	}

	s.issuer.Kill()
	down := time.Now()
	// The valid token keeps working while the issuer is down, through a
	// failed key-set refresh.
	served := 0
	waitFor(t, 13*time.Second, "a failed key-set refresh during the outage", func() bool {
		h, err := visit(c, alice, tok)
		if err != nil || h.status != http.StatusOK {
			t.Fatalf("valid token during the outage (after %d served): %v %d %q", served, err, h.status, h.reason)
		}
		served++
		return strings.Contains(s.users.Output(), fetchFailed) && time.Since(down) > time.Second
	})
	// The key set is still there: a token never verified before verifies.
	if h, err := visit(c, alice, unseen); err != nil || h.status != http.StatusOK {
		t.Fatalf("unseen valid token after the failed key-set refresh: %v %d %q", err, h.status, h.reason)
	}
	served++
	t.Logf("requests served with valid tokens while the issuer was down: %d in %s", served, time.Since(down).Round(100*time.Millisecond))

	// Once the session's tokens have expired, a navigation gets the
	// unavailable page, not a redirect.
	sleepUntil(tokenExp(t, unseen).Add(1100 * time.Millisecond))
	r := b.navigate(alice)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "Sign-in service unavailable") {
		t.Fatalf("expired navigation while the issuer is down: %d %q\n%s", r.status, r.location, r.body)
	}

	// A relying service that starts now cannot reach discovery.
	late, latePort := s.startRelying(t, "{username}."+s.domain, "0s")
	lateReady := fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", latePort)
	lateURL := fmt.Sprintf("http://alice.%s:%d/", s.domain, latePort)
	for _, u := range []string{lateReady, lateURL} {
		h, err := fetch(c, http.MethodGet, u, map[string]string{"canopy": tok}, http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}})
		if err != nil || h.status != http.StatusServiceUnavailable {
			t.Fatalf("relying service started during the outage, %s: %v %d, want 503", u, err, h.status)
		}
	}

	s.startIssuer(t)
	// The late relying service comes up by itself.
	took := waitFor(t, 40*time.Second, "late relying service ready", func() bool {
		h, err := fetch(c, http.MethodGet, lateReady, nil, nil)
		return err == nil && h.status == http.StatusOK
	})
	t.Logf("relying service started during the outage became ready %s after the issuer restarted", took.Round(100*time.Millisecond))
	// The relying service re-probes the issuer within a few seconds, then
	// sends the browser through /refresh again.
	waitFor(t, 15*time.Second, "redirect to /refresh after the restart", func() bool {
		r = b.navigate(alice)
		return r.status == http.StatusSeeOther
	})
	if !strings.HasPrefix(r.location, s.issuerURL+"/refresh?") {
		t.Fatalf("expired navigation after the restart: %d %q", r.status, r.location)
	}
	if r = b.navigate(r.location); r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("/refresh after the restart: %d %q", r.status, r.location)
	}
	if r = b.navigate(alice); r.status != http.StatusOK {
		t.Fatalf("page after the restart: %d", r.status)
	}

	if h, err := visit(c, lateURL, b.cookie(alice, "canopy").Value); err != nil || h.status != http.StatusOK {
		t.Fatalf("late relying service with a fresh token: %v %d %q\n%s", err, h.status, h.reason, late.Output())
	}
}

// TestJWKSMisbehaviour makes the issuer's JWKS endpoint answer garbage, then
// an empty key set, when the relying service refreshes its key set: it keeps
// the last good set, so tokens it has never seen, signed by the same key,
// still verify. pkg/sso's TestRemoteKeySetKeepsLastGoodSet covers every bad
// answer (500, 404, HTML, truncated, not a JWKS, empty, private keys only,
// over 1 MiB) against the RemoteKeySet itself; this shows two of them end to
// end, each on the relying service's own background refresh.
func TestJWKSMisbehaviour(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedStack(t, stackOptions{accessTTL: "60s", extra: []string{"--jwks-max-age", "1s"}}, jwksPass)
	app := s.appURL()
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, app); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	waitReady(t, s.appPort, s.app)
	c := rawClient()
	refresh := b.cookie(s.issuerURL, "canopy-refresh").Value
	for i, mode := range []string{jwksHTML, jwksEmpty} {
		proxy.setMode(mode)
		since := time.Now()
		took := proxy.waitAnswer(t, 30*time.Second, "relying service fetched a "+mode+" JWKS", func(a jwksAnswer) bool {
			return a.mode == mode && a.at.After(since)
		})
		// The relying service has taken the answer in when it logs the failure.
		waitFor(t, 3*time.Second, "relying service refused the "+mode+" JWKS", func() bool {
			return strings.Count(s.app.Output(), "key set fetch failed") > i
		})
		var access string
		refresh, access = s.mustRefresh(t, c, refresh, app)
		if h, err := visit(c, app, access); err != nil || h.status != http.StatusOK {
			t.Fatalf("new token after a %s JWKS answer: %v %d %q", mode, err, h.status, h.reason)
		}
		t.Logf("JWKS %s answer (fetched %s after the switch): a new token still verifies", mode, took.Round(100*time.Millisecond))
	}
	proxy.setMode(jwksPass)
}

// JWKS modes of jwksProxy.
const (
	jwksPass    = "pass"    // the issuer's own answer
	jwksHTML    = "html"    // 200 with an HTML page (a captive portal, a misrouted proxy)
	jwksEmpty   = "empty"   // {"keys":[]}
	jwksForeign = "foreign" // a valid set holding some other issuer's key
)

// jwksProxy stands on the issuer's public port in front of the real issuer,
// passing everything through except the JWKS, which it can answer badly. It
// logs each JWKS answer it gives, so a test knows when a relying service has
// fetched the key set and what it got.
type jwksProxy struct {
	port     int
	upstream string // the real issuer, http://127.0.0.1:PORT
	foreign  []byte
	relay    *httputil.ReverseProxy

	mu     sync.Mutex
	mode   string
	served []jwksAnswer
}

type jwksAnswer struct {
	at     time.Time
	mode   string
	status int
	body   string
}

func newJWKSProxy(t testing.TB, realPort int, mode string) *jwksProxy {
	t.Helper()
	p := &jwksProxy{upstream: fmt.Sprintf("http://127.0.0.1:%d", realPort), mode: mode, foreign: foreignJWKS(t)}
	target, err := url.Parse(p.upstream)
	if err != nil {
		t.Fatal(err)
	}
	p.relay = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}, ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // the issuer is starting or was killed
	}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	port, err := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	p.port = port
	return p
}

// foreignJWKS is a well-formed key set of a key the issuer never had.
func foreignJWKS(t testing.TB) []byte {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "foreign-key", Algorithm: "EdDSA", Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *jwksProxy) setMode(m string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

// answers returns the JWKS answers given so far.
func (p *jwksProxy) answers() []jwksAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]jwksAnswer(nil), p.served...)
}

// waitAnswer waits until the proxy has given a JWKS answer for which ok holds.
func (p *jwksProxy) waitAnswer(t testing.TB, timeout time.Duration, what string, ok func(jwksAnswer) bool) time.Duration {
	t.Helper()
	return waitFor(t, timeout, what, func() bool {
		for _, a := range p.answers() {
			if ok(a) {
				return true
			}
		}
		return false
	})
}

func (p *jwksProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/.well-known/jwks.json" {
		p.relay.ServeHTTP(w, r) // unchanged, Host included: the issuer sees its public name
		return
	}
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	status, body := http.StatusOK, ""
	switch mode {
	case jwksHTML:
		body = "<!doctype html><html><body>Please sign in to the network</body></html>"
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, body)
	case jwksEmpty:
		body = `{"keys":[]}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=1")
		_, _ = io.WriteString(w, body)
	case jwksForeign:
		body = string(p.foreign)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=1")
		_, _ = w.Write(p.foreign)
	default:
		status, body = p.passJWKS(w, r)
	}
	p.mu.Lock()
	p.served = append(p.served, jwksAnswer{at: time.Now(), mode: mode, status: status, body: body})
	p.mu.Unlock()
}

// passJWKS relays the issuer's JWKS answer (with If-None-Match).
func (p *jwksProxy) passJWKS(w http.ResponseWriter, r *http.Request) (int, string) {
	req, err := http.NewRequest(http.MethodGet, p.upstream+r.URL.Path, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway, ""
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, h := range []string{"Content-Type", "Cache-Control", "ETag"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode, string(body)
}

// newProxiedStack is an issuer whose public URL is a jwksProxy in front of
// it, and one relying service for app.domain.localhost that reaches the
// issuer through the proxy. Browsers reach the issuer through the proxy too,
// so every token's iss is the proxy's URL.
func newProxiedStack(t testing.TB, o stackOptions, mode string) (*stack, *jwksProxy) {
	t.Helper()
	if o.accessTTL == "" {
		o.accessTTL = "5m"
	}
	if o.leeway == "" {
		o.leeway = "30s"
	}
	realPort := freePort(t)
	p := newJWKSProxy(t, realPort, mode)
	s := &stack{dir: t.TempDir(), domain: "domain.localhost", issuerPort: p.port}
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, p.port)
	s.issuerArgs = append([]string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", realPort), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys"),
		"--access-ttl", o.accessTTL}, o.extra...)
	s.startIssuer(t)
	s.appPort = freePort(t)
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", s.appPort), "--issuer", s.issuerURL,
		"--host", "app." + s.domain, "--leeway", o.leeway, "--revocation-poll", "1s"}, o.relying...)
	s.app = start(t, "relying", args...)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", s.appPort), s.app)
	return s, p
}
