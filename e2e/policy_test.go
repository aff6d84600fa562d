package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// issuerStack is a stack with the issuer alone: the test starts relying
// itself, with a policy file.
func issuerStack(t *testing.T, extra ...string) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir(), domain: "domain.localhost"}
	s.issuerPort = freePort(t)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, s.issuerPort)
	s.issuerArgs = append([]string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.issuerPort), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys")}, extra...)
	s.startIssuer(t)
	return s
}

// fiveHosts is the policy of the end-to-end tests: an owner-only
// {username} host, a group host, a host with a public path, a host that
// gets the token, and forward-auth-only hosts; {issuer} and {upstream} are
// filled in.
const fiveHosts = `# relying's end-to-end policy
issuer: {issuer}
hosts:
  - host: "{username}.domain.localhost"
    owner_only: true
  - host: staff.domain.localhost
    upstream: {upstream}
    require_groups: [staff]
  - host: docs.domain.localhost
    upstream: {upstream}
    public_paths: [/public/]
  - host: api.domain.localhost
    upstream: {upstream}
    forward_token: true
  - host: "*.tools.domain.localhost"   # forward auth only
`

// writePolicy writes text to name atomically (a reader never sees half).
func writePolicy(t *testing.T, name, text string) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// startPolicyRelying runs relying --config on a free port.
func startPolicyRelying(t *testing.T, file string, env []string, extra ...string) (*proc, int) {
	t.Helper()
	port := freePort(t)
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--config", file,
		"--trusted-proxies", "127.0.0.1/32", "--revocation-poll", "1s"}, extra...)
	p := startEnv(t, env, "relying", args...)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/readyz", port), p)
	return p, port
}

// policyUsers adds alice (in staff) and bob (in no group) and signs both in.
func policyUsers(t *testing.T, s *stack, returnTo string) (alice, bob *browser) {
	t.Helper()
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "alice", "--group", "staff"); err != nil {
		t.Fatalf("user add alice: %v\n%s", err, out)
	}
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "bob"); err != nil {
		t.Fatalf("user add bob: %v\n%s", err, out)
	}
	alice, bob = newBrowser(t), newBrowser(t)
	for name, b := range map[string]*browser{"alice": alice, "bob": bob} {
		if r := s.signIn(t, b, name, alicePW, returnTo); r.status != http.StatusSeeOther {
			t.Fatalf("%s's sign-in: %d\n%s", name, r.status, r.body)
		}
	}
	return alice, bob
}

// seen decodes what upstreamApp saw.
func seen(t *testing.T, r response) (user, cookie, auth string) {
	t.Helper()
	var v struct {
		Canopy        map[string][]string
		Cookie        string
		Authorization string
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("upstream answer %q: %v", r.body, err)
	}
	if u := v.Canopy["X-Canopy-User"]; len(u) > 0 {
		user = u[0]
	}
	return user, v.Cookie, v.Authorization
}

// TestPolicyFiveHosts: one relying process serves five hosts from one
// policy file, each with its own rule, directly and as forward auth.
func TestPolicyFiveHosts(t *testing.T) {
	s := issuerStack(t)
	app := upstreamApp(t)
	file := filepath.Join(t.TempDir(), "relying.yaml")
	writePolicy(t, file, strings.NewReplacer("{issuer}", s.issuerURL, "{upstream}", app.URL).Replace(fiveHosts))
	_, port := startPolicyRelying(t, file, nil)
	u := func(host, path string) string { return fmt.Sprintf("http://%s.%s:%d%s", host, s.domain, port, path) }
	alice, bob := policyUsers(t, s, u("alice", "/"))
	anon := newBrowser(t)

	// The owner-only {username} host.
	if r := alice.navigate(u("alice", "/")); r.status != http.StatusOK || !strings.Contains(r.body, "alice") {
		t.Fatalf("alice's page as alice: %d", r.status)
	}
	if r := bob.navigate(u("alice", "/")); r.status != http.StatusForbidden {
		t.Fatalf("alice's page as bob: %d", r.status)
	}
	// The group host.
	if r := alice.api("GET", u("staff", "/x")); r.status != http.StatusOK {
		t.Fatalf("staff as alice: %d %s", r.status, r.body)
	} else if user, cookie, auth := seen(t, r); user != "alice" || strings.Contains(cookie, "canopy=") || auth != "" {
		t.Fatalf("staff upstream saw user %q cookie %q authorization %q", user, cookie, auth)
	}
	if r := bob.api("GET", u("staff", "/x")); r.status != http.StatusForbidden {
		t.Fatalf("staff as bob: %d", r.status)
	}
	// The public path, and what is not under it.
	if r := anon.api("GET", u("docs", "/public/a.css")); r.status != http.StatusOK {
		t.Fatalf("docs public path anonymous: %d", r.status)
	} else if user, _, _ := seen(t, r); user != "" {
		t.Fatalf("public path passed identity %q", user)
	}
	for _, p := range []string{"/private", "/public/%2e%2e/private", "/public%2f..%2fprivate"} {
		if r := anon.api("GET", u("docs", p)); r.status != http.StatusUnauthorized {
			t.Fatalf("docs %s anonymous: %d, want 401", p, r.status)
		}
	}
	// The forwarded-token host.
	if r := bob.api("GET", u("api", "/v1")); r.status != http.StatusOK {
		t.Fatalf("api as bob: %d", r.status)
	} else if user, cookie, auth := seen(t, r); user != "bob" || auth != "Bearer "+bob.cookie(u("api", "/"), "canopy").Value || strings.Contains(cookie, "canopy=") {
		t.Fatalf("api upstream saw user %q authorization %.30q cookie %q", user, auth, cookie)
	}
	// Forward auth: the forwarded host picks the entry.
	fa := func(b *browser, host string) response {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/.canopy/auth", port), nil)
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Uri", "/dashboard")
		if c := alice.cookie(u("alice", "/"), "canopy"); c != nil && b == alice {
			req.Header.Set("Cookie", "canopy="+c.Value)
		}
		if c := bob.cookie(u("bob", "/"), "canopy"); c != nil && b == bob {
			req.Header.Set("Cookie", "canopy="+c.Value)
		}
		return b.do(req)
	}
	if r := fa(alice, "grafana.tools.domain.localhost"); r.status != http.StatusOK || r.header.Get("X-Canopy-User") != "alice" {
		t.Fatalf("forward auth for tools as alice: %d %q", r.status, r.header.Get("X-Canopy-User"))
	}
	if r := fa(anon, "grafana.tools.domain.localhost"); r.status != http.StatusUnauthorized || r.header.Get("X-Canopy-Login-URL") == "" {
		t.Fatalf("forward auth for tools anonymous: %d", r.status)
	}
	if r := fa(bob, "staff.domain.localhost"); r.status != http.StatusForbidden {
		t.Fatalf("forward auth for staff as bob: %d", r.status)
	}
	if r := fa(alice, "unknown.example.com"); r.status != http.StatusForbidden {
		t.Fatalf("forward auth for an unknown host: %d, want 403", r.status)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "unknown.example.com"
	if r := alice.do(req); r.status != http.StatusNotFound {
		t.Fatalf("unknown host direct: %d, want 404", r.status)
	}
}

// TestPolicyReloadUnderLoad: while requests run on loopback, the policy is
// reloaded with a good file (a changed poll, then SIGHUP), a bad one
// (kept out, logged) and a good one again; no request fails.
func TestPolicyReloadUnderLoad(t *testing.T) {
	s := issuerStack(t)
	app := upstreamApp(t)
	file := filepath.Join(t.TempDir(), "relying.yaml")
	good := strings.NewReplacer("{issuer}", s.issuerURL, "{upstream}", app.URL).Replace(fiveHosts)
	writePolicy(t, file, good)
	p, port := startPolicyRelying(t, file, nil, "--config-poll", "100ms")
	u := func(host, path string) string { return fmt.Sprintf("http://%s.%s:%d%s", host, s.domain, port, path) }
	alice, _ := policyUsers(t, s, u("alice", "/"))
	token := alice.cookie(u("alice", "/"), "canopy").Value

	const workers, perWorker = 4, 1000
	var sent, failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	client := newBrowser(t).client
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				host := []string{"staff", "alice", "api"}[(w+i)%3]
				req, _ := http.NewRequest("GET", u(host, "/"), nil)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Cookie", "canopy="+token)
				sent.Add(1)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("%s: %v", host, err) })
				}
			}
		})
	}
	waitLog := func(substr string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(p.Output(), substr) < n {
			if time.Now().After(deadline) {
				t.Fatalf("relying never logged %q %d times:\n%s", substr, n, p.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for sent.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	atFirst := sent.Load()
	// A good change, picked up by the poll: a sixth host.
	good2 := good + "  - host: new.apps.domain.localhost\n    upstream: " + app.URL + "\n"
	writePolicy(t, file, good2)
	waitLog("policy: reloaded", 1)
	// SIGHUP reloads the same file again.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("policy: reloaded", 2)
	// A bad file: refused, logged, the running policy kept.
	writePolicy(t, file, good2+"  - host: staff.domain.localhost\n    colour: blue\n")
	waitLog("reload failed; keeping the running policy", 1)
	if r := alice.api("GET", u("new.apps", "/")); r.status != http.StatusOK {
		t.Fatalf("new host after the bad file: %d", r.status)
	}
	writePolicy(t, file, good)
	waitLog("policy: reloaded", 3)
	atLast := sent.Load()
	wg.Wait()
	if r := alice.api("GET", u("new.apps", "/")); r.status != http.StatusNotFound {
		t.Fatalf("removed host after the last reload: %d, want 404", r.status)
	}
	out := p.Output()
	for _, want := range []string{`already defined at line`, `unknown key \"colour\"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused reload's log lacks %s:\n%s", want, out)
		}
	}
	t.Logf("reload under load: %d requests sent, %d failed; the reloads (3 good, 1 refused) came between requests %d and %d",
		sent.Load(), failed.Load(), atFirst, atLast)
	if atLast >= workers*perWorker {
		t.Errorf("the load had ended before the last reload: lengthen it")
	}
	if sent.Load() != workers*perWorker || failed.Load() != 0 {
		t.Fatalf("sent %d, failed %d", sent.Load(), failed.Load())
	}
}
