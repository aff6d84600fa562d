package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// upstreamApp echoes the identity headers it receives as JSON, and answers a
// WebSocket-style upgrade by echoing raw bytes.
func upstreamApp(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("upstream hijack: %v", err)
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Upstream-User: %s\r\n\r\n", r.Header.Get("X-Canopy-User"))
			_ = rw.Flush()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(rw, buf); err == nil {
				_, _ = rw.Write(append([]byte("echo:"), buf...))
				_ = rw.Flush()
			}
			return
		}
		canopy := map[string][]string{}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-canopy-") {
				canopy[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "host": r.Host, "canopy": canopy,
			"cookie": r.Header.Get("Cookie"), "authorization": r.Header.Get("Authorization")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestProxyMode puts an app behind relying --upstream: verified requests carry
// the identity headers, spoofed ones are stripped, upgrades pass, and a dead
// upstream is a 502.
func TestProxyMode(t *testing.T) {
	s := newStack(t, stackOptions{})
	app := upstreamApp(t)
	port, mport := freePort(t), freePort(t)
	p := start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", s.issuerURL,
		"--host", "wiki."+s.domain, "--upstream", app.URL, "--trusted-proxies", "127.0.0.1/32",
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", port), p)
	wiki := fmt.Sprintf("http://wiki.%s:%d", s.domain, port)

	b := newBrowser(t)
	if r := b.navigate(wiki + "/page"); r.status != http.StatusSeeOther {
		t.Fatalf("anonymous request reached the app: %d %s", r.status, r.body)
	}
	if r := s.signUp(t, b, "alice", alicePW, wiki+"/page"); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodGet, wiki+"/page?x=1", nil)
	req.Header.Set("X-Canopy-User", "mallory")
	req.Header.Set("x-canopy-sub", "spoofed")
	req.Header.Set("X-Canopy-Extra", "spoofed")
	r := b.do(req)
	if r.status != http.StatusOK {
		t.Fatalf("proxied request: %d %s", r.status, r.body)
	}
	var got struct {
		Path          string              `json:"path"`
		Canopy        map[string][]string `json:"canopy"`
		Cookie        string              `json:"cookie"`
		Authorization string              `json:"authorization"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("upstream body %q: %v", r.body, err)
	}
	if u := got.Canopy["X-Canopy-User"]; len(u) != 1 || u[0] != "alice" {
		t.Fatalf("X-Canopy-User reached the app as %v", u)
	}
	if len(got.Canopy["X-Canopy-Sub"]) != 1 || got.Canopy["X-Canopy-Sub"][0] == "spoofed" || len(got.Canopy["X-Canopy-Sid"]) != 1 {
		t.Fatalf("identity headers: %v", got.Canopy)
	}
	if _, ok := got.Canopy["X-Canopy-Extra"]; ok {
		t.Fatalf("a spoofed X-Canopy-* header reached the app: %v", got.Canopy)
	}
	// By default the app never sees the token: not as a cookie, not as a header.
	if strings.Contains(got.Cookie, "canopy=") || got.Authorization != "" {
		t.Fatalf("the token reached the app: cookie %q, authorization %q", got.Cookie, got.Authorization)
	}
	// With --forward-token it gets it as a bearer token, and other cookies pass.
	fport := freePort(t)
	fp := start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", fport), "--issuer", s.issuerURL,
		"--host", "wiki."+s.domain, "--upstream", app.URL, "--forward-token")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", fport), fp)
	freq, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://wiki.%s:%d/page", s.domain, fport), nil)
	freq.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
	if r := b.do(freq); r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
		t.Fatalf("--forward-token request: %d %s", r.status, r.body)
	}
	if want := "Bearer " + b.cookie(wiki, "canopy").Value; got.Authorization != want || !strings.Contains(got.Cookie, "theme=dark") ||
		strings.Contains(got.Cookie, "canopy=") {
		t.Fatalf("--forward-token: authorization %q, cookie %q", got.Authorization, got.Cookie)
	}

	// A WebSocket-style upgrade passes through with the identity attached.
	access := b.cookie(wiki, "canopy")
	conn, err := localhost.DialContext(nil)(t.Context(), "tcp", fmt.Sprintf("wiki.%s:%d", s.domain, port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: wiki.%s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: canopy=%s\r\n\r\n", s.domain, port, access.Value)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Upstream-User") != "alice" {
		t.Fatalf("upgrade: %d, upstream saw user %q", resp.StatusCode, resp.Header.Get("X-Upstream-User"))
	}
	_, _ = conn.Write([]byte("hello"))
	echo := make([]byte, 10)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "echo:hello" {
		t.Fatalf("upgraded stream: %q %v", echo, err)
	}

	// Forward-auth: 200 with the headers, 401 with the login URL, 403 elsewhere.
	fa := func(cookie bool, host string) response {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/.canopy/auth", port), nil)
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Uri", "/doc?id=7")
		if cookie {
			req.Header.Set("Cookie", "canopy="+access.Value)
		}
		resp, err := localhost.Client(5 * time.Second).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return response{status: resp.StatusCode, header: resp.Header}
	}
	wikiHost := fmt.Sprintf("wiki.%s:%d", s.domain, port)
	if r := fa(true, wikiHost); r.status != http.StatusOK || r.header.Get("X-Canopy-User") != "alice" || r.header.Get("X-Canopy-Sid") == "" {
		t.Fatalf("forward-auth with a cookie: %d %v", r.status, r.header)
	}
	r = fa(false, wikiHost)
	wantLogin := s.issuerURL + "/login?return_to=" + "http%3A%2F%2F" + strings.ReplaceAll(wikiHost, ":", "%3A") + "%2Fdoc%3Fid%3D7"
	if r.status != http.StatusUnauthorized || r.header.Get("X-Canopy-Login-URL") != wantLogin {
		t.Fatalf("forward-auth without a cookie: %d %q, want %q", r.status, r.header.Get("X-Canopy-Login-URL"), wantLogin)
	}

	// Metrics count what happened.
	mresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`canopy_relying_verifications_total{outcome="accepted",reason="ok"}`,
		`canopy_relying_token_cache_total{result="hit"}`, `canopy_relying_jwks_fetches_total{outcome="updated"} 1`,
		"canopy_relying_jwks_age_seconds", "canopy_relying_request_duration_seconds_bucket"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The app goes away: 502, quickly, not a hang.
	app.Close()
	start := time.Now()
	if r := b.navigate(wiki + "/page"); r.status != http.StatusBadGateway {
		t.Fatalf("upstream down: %d", r.status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("502 took %s", d)
	}
}
