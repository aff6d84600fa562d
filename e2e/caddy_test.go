package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var caddyNoticeOnce sync.Once

// caddyPath is Debian's caddy (apt-get install caddy), or the test is
// skipped loudly; with CANOPY_REQUIRE_BROWSER=1 (CI) a missing caddy fails.
func caddyPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("caddy")
	if err == nil {
		return path
	}
	const missing = "no caddy found; install Debian's caddy (apt-get install caddy)"
	if os.Getenv("CANOPY_REQUIRE_BROWSER") == "1" {
		t.Fatal("CADDY TESTS FAILED: " + missing + " (CANOPY_REQUIRE_BROWSER=1 requires it)")
	}
	msg := "CADDY TESTS SKIPPED: " + missing + "; set CANOPY_REQUIRE_BROWSER=1 to make this a failure"
	caddyNoticeOnce.Do(func() { fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***") })
	t.Skip(msg)
	return ""
}

// caddyfile is the README's Caddy recipe: one site for every host, each
// request asked of relying's forward auth, which picks the policy entry
// by the forwarded host; a 401 becomes a redirect to the login URL.
const caddyfile = `{
	admin off
	auto_https off
	http_port {port}
}

http://:{port} {
	forward_auth 127.0.0.1:{relying} {
		uri /.canopy/auth
		copy_headers X-Canopy-User X-Canopy-Sub X-Canopy-Sid
		@unauthenticated status 401
		handle_response @unauthenticated {
			redir {http.reverse_proxy.header.X-Canopy-Login-Url} 303
		}
	}
	reverse_proxy {upstream}
}
`

// proxyRecipeStack starts what the Caddy and nginx recipe tests put a
// proxy in front of: an issuer, the app, and relying answering the proxy's
// auth requests for several hosts of one policy file. The entries need no
// upstream: the proxy's own pass to the app is the app's way in.
func proxyRecipeStack(t *testing.T) (*stack, *httptest.Server, int) {
	t.Helper()
	s := issuerStack(t)
	app := upstreamApp(t)
	file := filepath.Join(t.TempDir(), "relying.yaml")
	writePolicy(t, file, "issuer: "+s.issuerURL+`
hosts:
  - host: "{username}.domain.localhost"
  - host: staff.domain.localhost
    require_groups: [staff]
  - host: docs.domain.localhost
    public_paths: [/public/]
  - host: "*.tools.domain.localhost"
`)
	_, rport := startPolicyRelying(t, file, nil)
	return s, app, rport
}

// TestCaddyForwardAuth puts Debian's Caddy on loopback in front of several
// hosts of one policy file, with relying answering Caddy's forward_auth.
func TestCaddyForwardAuth(t *testing.T) {
	bin := caddyPath(t)
	s, app, rport := proxyRecipeStack(t)

	dir := t.TempDir()
	port := freePort(t)
	conf := strings.NewReplacer("{port}", fmt.Sprint(port), "{relying}", fmt.Sprint(rport), "{upstream}", app.URL).Replace(caddyfile)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- caddy output:\n%s", out.String())
		}
	})
	checkProxyRecipe(t, s, "caddy", port, &out, func(host string) string {
		return fmt.Sprintf("http://%s.%s:%d", host, s.domain, port)
	})
}

// checkProxyRecipe drives a proxy recipe listening on port in front of the
// policy file's hosts (named proxy in messages; out is its output): it waits
// for the port, then checks each host's answer, the user the app saw, the
// login redirect's return URL (returnTo gives it for a host) and a host no
// entry serves, which must be a 403.
func checkProxyRecipe(t *testing.T, s *stack, proxy string, port int, out fmt.Stringer, returnTo func(host string) string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %d:\n%s", proxy, port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	u := func(host, path string) string { return fmt.Sprintf("http://%s.%s:%d%s", host, s.domain, port, path) }
	alice, bob := policyUsers(t, s, u("alice", "/"))
	anon := newBrowser(t)
	for _, tc := range []struct {
		name       string
		b          *browser
		host, path string
		want       int
		user       string // X-Canopy-User the app saw
	}{
		{"owner's page", alice, "alice", "/", http.StatusOK, "alice"},
		{"someone else's page", bob, "alice", "/", http.StatusForbidden, ""},
		{"group host, member", alice, "staff", "/x", http.StatusOK, "alice"},
		{"group host, not a member", bob, "staff", "/x", http.StatusForbidden, ""},
		{"public path", anon, "docs", "/public/a.css", http.StatusOK, ""},
		{"public path, spoofed identity", anon, "docs", "/public/spoof", http.StatusOK, ""},
		{"out of the public path", anon, "docs", "/public/%2e%2e/admin", http.StatusSeeOther, ""},
		{"private path anonymous", anon, "docs", "/admin", http.StatusSeeOther, ""},
		{"wildcard host", bob, "grafana.tools", "/", http.StatusOK, "bob"},
		{"wildcard host anonymous", anon, "grafana.tools", "/", http.StatusSeeOther, ""},
		{"wildcard host, spoofed identity", bob, "grafana.tools", "/", http.StatusOK, "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", u(tc.host, tc.path), nil)
			req.Header.Set("Accept", "application/json")
			if strings.Contains(tc.name, "spoofed") {
				req.Header.Set("X-Canopy-User", "admin")
			}
			r := tc.b.do(req)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.want, r.body)
			}
			if tc.want == http.StatusSeeOther && !strings.HasPrefix(r.location, s.issuerURL+"/login?return_to="+url.QueryEscape(returnTo(tc.host))) {
				t.Errorf("303 to %q, want the issuer's login with this URL", r.location)
			}
			if tc.want == http.StatusOK {
				if user, _, _ := seen(t, r); user != tc.user {
					t.Errorf("the app saw user %q, want %q", user, tc.user)
				}
			}
		})
	}
	// A host no entry serves: 403 from forward auth, which the proxy passes
	// on (a 404 there would become the proxy's own error).
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "unknown.example.com"
	if r := alice.do(req); r.status != http.StatusForbidden {
		t.Fatalf("unknown host through %s: %d, want 403", proxy, r.status)
	}
}

// lockedBuffer collects a process's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
