package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var nginxNoticeOnce sync.Once

// nginxPath is Debian's nginx, or the test is skipped loudly; with
// CANOPY_REQUIRE_NGINX=1 or CANOPY_REQUIRE_BROWSER=1 (CI sets both) a
// missing nginx fails.
func nginxPath(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("nginx"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	const missing = "no nginx found; install Debian's nginx (apt-get install nginx)"
	if os.Getenv("CANOPY_REQUIRE_NGINX") == "1" || os.Getenv("CANOPY_REQUIRE_BROWSER") == "1" {
		t.Fatal("NGINX TESTS FAILED: " + missing + " (CANOPY_REQUIRE_NGINX=1 or CANOPY_REQUIRE_BROWSER=1 requires it)")
	}
	msg := "NGINX TESTS SKIPPED: " + missing + "; set CANOPY_REQUIRE_NGINX=1 to make this a failure"
	nginxNoticeOnce.Do(func() { fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***") })
	t.Skip(msg)
	return ""
}

// nginxConf is the README's nginx recipe for several hosts: one server
// block, every request asked of relying's forward auth with $host.
const nginxConf = `worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {
        listen 127.0.0.1:{port};
        server_name alice.domain.localhost staff.domain.localhost docs.domain.localhost *.tools.domain.localhost unknown.example.com;

        location = /.canopy/auth {
            internal;
            proxy_pass http://127.0.0.1:{relying}/.canopy/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$host$request_uri;
        }

        location / {
            auth_request /.canopy/auth;
            auth_request_set $canopy_user  $upstream_http_x_canopy_user;
            auth_request_set $canopy_sub   $upstream_http_x_canopy_sub;
            auth_request_set $canopy_sid   $upstream_http_x_canopy_sid;
            auth_request_set $canopy_login $upstream_http_x_canopy_login_url;
            error_page 401 = @login;
            proxy_set_header X-Canopy-User $canopy_user;
            proxy_set_header X-Canopy-Sub  $canopy_sub;
            proxy_set_header X-Canopy-Sid  $canopy_sid;
            proxy_pass {upstream};
        }

        location @login { return 303 $canopy_login; }
    }
}
`

// TestNginxAuthRequest puts Debian's nginx in front of several hosts of
// one policy file, with relying answering auth_request.
func TestNginxAuthRequest(t *testing.T) {
	bin := nginxPath(t)
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

	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755) // nginx's workers may run as nobody
	port := freePort(t)
	conf := strings.NewReplacer("{dir}", dir, "{port}", fmt.Sprint(port), "{relying}", fmt.Sprint(rport),
		"{upstream}", app.URL).Replace(nginxConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx output:\n%s\n%s", out.String(), log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %d:\n%s", port, out.String())
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
		user       string
	}{
		{"owner's page", alice, "alice", "/", http.StatusOK, "alice"},
		{"someone else's page", bob, "alice", "/", http.StatusForbidden, ""},
		{"group host, member", alice, "staff", "/x", http.StatusOK, "alice"},
		{"group host, not a member", bob, "staff", "/x", http.StatusForbidden, ""},
		{"public path", anon, "docs", "/public/a.css", http.StatusOK, ""},
		{"public path, spoofed identity", anon, "docs", "/public/spoof", http.StatusOK, ""},
		{"out of the public path", anon, "docs", "/public/%2e%2e/admin", http.StatusSeeOther, ""},
		{"private path anonymous", anon, "docs", "/admin", http.StatusSeeOther, ""},
		{"wildcard host, spoofed identity", bob, "grafana.tools", "/", http.StatusOK, "bob"},
		{"wildcard host anonymous", anon, "grafana.tools", "/", http.StatusSeeOther, ""},
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
			// $host has no port: the recipe is for nginx on the default port.
			if tc.want == http.StatusSeeOther && !strings.HasPrefix(r.location, s.issuerURL+"/login?return_to="+url.QueryEscape("http://"+tc.host+"."+s.domain+"/")) {
				t.Errorf("303 to %q, want the issuer's login with this URL", r.location)
			}
			if tc.want == http.StatusOK {
				if user, _, _ := seen(t, r); user != tc.user {
					t.Errorf("the app saw user %q, want %q", user, tc.user)
				}
			}
		})
	}
	// A host no entry serves: 403 from forward auth, which nginx passes on (a 404 would be its 500).
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "unknown.example.com"
	if r := alice.do(req); r.status != http.StatusForbidden {
		t.Fatalf("unknown host through nginx: %d, want 403", r.status)
	}
}
