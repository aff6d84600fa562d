package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	s, app, rport := proxyRecipeStack(t)

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
	// $host has no port: the recipe is for nginx on the default port.
	checkProxyRecipe(t, s, "nginx", port, &out, func(host string) string { return "http://" + host + "." + s.domain + "/" })
}
