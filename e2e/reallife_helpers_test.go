package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// Helpers for the "sessions that survive real life" tests (refresh,
// durability, rotation, logout, outage, loop). The ones that take no
// testing.TB return errors instead of failing the test, so load goroutines
// can use them.

// rawClient is a client without a cookie jar that does not follow redirects:
// each request carries exactly the cookies the test gives it, as a second tab,
// a replaying attacker or a load generator would.
func rawClient() *http.Client {
	return &http.Client{Transport: localhost.Transport(), Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// hit is one response as seen by a raw client.
type hit struct {
	status   int
	location string
	set      map[string]string // Set-Cookie name → value ("" when the cookie is cleared)
	reason   string            // the "reason" of a relying service's 401 JSON
	body     string
}

// fetch sends one request with the given cookies (name → value).
func fetch(c *http.Client, method, u string, cookies map[string]string, hdr http.Header) (hit, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return hit{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	for name, v := range cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	resp, err := c.Do(req)
	if err != nil {
		return hit{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return hit{}, fmt.Errorf("%s %s: reading body: %w", method, u, err)
	}
	h := hit{status: resp.StatusCode, location: resp.Header.Get("Location"), set: map[string]string{}, body: string(body)}
	for _, ck := range resp.Cookies() {
		h.set[ck.Name] = ck.Value
	}
	if resp.StatusCode == http.StatusUnauthorized {
		var e struct{ Reason string }
		_ = json.Unmarshal(body, &e)
		h.reason = e.Reason
	}
	return h, nil
}

// refreshWith presents refresh token tok to GET /refresh, as a browser tab
// holding that cookie would.
func (s *stack) refreshWith(c *http.Client, tok, returnTo string) (hit, error) {
	return fetch(c, http.MethodGet, s.issuerURL+"/refresh?return_to="+url.QueryEscape(returnTo),
		map[string]string{"canopy-refresh": tok}, http.Header{"Accept": {"text/html"}})
}

// rotated reports whether h is a successful browser refresh back to returnTo,
// and returns the new refresh and access tokens.
func (h hit) rotated(returnTo string) (refresh, access string, ok bool) {
	refresh, access = h.set["canopy-refresh"], h.set["canopy"]
	return refresh, access, h.status == http.StatusSeeOther && h.location == returnTo && refresh != "" && access != ""
}

// toLogin reports whether h sends the browser to the login form.
func (h hit) toLogin() bool {
	return h.status == http.StatusSeeOther && strings.HasPrefix(h.location, "/login")
}

// mustRefresh rotates tok and fails the test unless it works.
func (s *stack) mustRefresh(t testing.TB, c *http.Client, tok, returnTo string) (refresh, access string) {
	t.Helper()
	h, err := s.refreshWith(c, tok, returnTo)
	if err != nil {
		t.Fatal(err)
	}
	refresh, access, ok := h.rotated(returnTo)
	if !ok {
		t.Fatalf("refresh: %d %q, cookies %v", h.status, h.location, h.set)
	}
	return refresh, access
}

// visit is an API request (not a navigation) to a relying service with an
// access token in the cookie: 200 when accepted, 401 with a reason when not.
func visit(c *http.Client, u, access string) (hit, error) {
	return fetch(c, http.MethodGet, u, map[string]string{"canopy": access}, http.Header{"Accept": {"application/json"}})
}

// tokenPart decodes the header (0) or payload (1) of a compact JWS without
// verifying it (nil when it is not one): the tests only read sid, kid and exp
// of tokens the issuer just handed out.
func tokenPart(tok string, i int) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// kidOf is the kid of a token's header ("" when it has none); safe in load
// goroutines.
func kidOf(tok string) string {
	kid, _ := tokenPart(tok, 0)["kid"].(string)
	return kid
}

func tokenKID(t testing.TB, tok string) string {
	t.Helper()
	kid := kidOf(tok)
	if kid == "" {
		t.Fatalf("no kid in token %q", tok)
	}
	return kid
}

func tokenSID(t testing.TB, tok string) string {
	t.Helper()
	sid, _ := tokenPart(tok, 1)["sid"].(string)
	if sid == "" {
		t.Fatalf("no sid in token %q", tok)
	}
	return sid
}

func tokenExp(t testing.TB, tok string) time.Time {
	t.Helper()
	exp, ok := tokenPart(tok, 1)["exp"].(float64)
	if !ok {
		t.Fatalf("no exp in token %q", tok)
	}
	return time.Unix(int64(exp), 0)
}

// revokedSIDs reads the issuer's revocation feed.
func (s *stack) revokedSIDs(t testing.TB) map[string]bool {
	t.Helper()
	h, err := fetch(rawClient(), http.MethodGet, s.issuerURL+"/sessions/revoked", nil, nil)
	if err != nil || h.status != http.StatusOK {
		t.Fatalf("GET /sessions/revoked: %v %d", err, h.status)
	}
	var feed struct {
		Revoked []struct{ SID string } `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(h.body), &feed); err != nil {
		t.Fatalf("revocation feed: %v\n%s", err, h.body)
	}
	out := map[string]bool{}
	for _, r := range feed.Revoked {
		out[r.SID] = true
	}
	return out
}

// waitFor polls cond every 50 ms until it holds and returns how long that
// took, or fails the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sleepUntil sleeps until t (no-op when it has passed).
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// startRelying starts one more relying service for the stack's issuer and
// waits until it is live (not necessarily ready: see waitReady).
func (s *stack) startRelying(t testing.TB, host, leeway string, extra ...string) (*proc, int) {
	t.Helper()
	port := freePort(t)
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", s.issuerURL,
		"--host", host, "--leeway", leeway, "--revocation-poll", "1s"}, extra...)
	p := start(t, "relying", args...)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", port), p)
	return p, port
}

// waitReady waits until a relying service on port has loaded the key set.
func waitReady(t testing.TB, port int, p *proc) {
	t.Helper()
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", port), p)
}

// issuerKeys returns `issuer keys list` as kid → state, for the access
// token's keys (EdDSA, the default --alg) only: the issuer keeps one
// lifecycle per algorithm.
func (s *stack) issuerKeys(t testing.TB) map[string]string {
	t.Helper()
	out, err := s.issuerCmd(t, "", "keys", "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	return accessKeyStates(out)
}

// accessKeyStates reads `issuer keys list` output as kid → state for the
// EdDSA keys.
func accessKeyStates(out string) map[string]string {
	keys := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "EdDSA" {
			keys[f[0]] = f[2]
		}
	}
	return keys
}

func keyIn(keys map[string]string, state string) string {
	for kid, st := range keys {
		if st == state {
			return kid
		}
	}
	return ""
}
