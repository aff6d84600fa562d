package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// nginxStreamConf is an unprivileged nginx on loopback in front of one backend,
// set up as the README recommends (HTTP/1.1, Connection "") but with a
// read timeout short enough that an idle stream is cut within the test;
// worker_shutdown_timeout makes a reload cut open streams.
const nginxStreamConf = `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
worker_shutdown_timeout 1s;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		location / {
			proxy_pass http://127.0.0.1:%[3]d;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $http_host;
			proxy_read_timeout %[4]s;
		}
	}
}
`

// startNginx runs nginx on port in front of backend; it returns the master.
func startNginx(t *testing.T, port, backend int, readTimeout string) *exec.Cmd {
	t.Helper()
	bin := nginxPath(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxStreamConf, dir, port, backend, readTimeout)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx output:\n%s\n--- error.log:\n%s", out.String(), log)
		}
	})
	return cmd
}

// TestStreamThroughNginx: behind nginx with a 2 s proxy_read_timeout, the
// issuer's heartbeats (500 ms here) keep an idle stream open, events pass
// at once (X-Accel-Buffering), and when nginx cuts the stream (a reload
// with a 1 s worker_shutdown_timeout) the client resumes from its cursor
// and misses nothing committed meanwhile.
func TestStreamThroughNginx(t *testing.T) {
	t.Parallel()
	nginxPath(t)
	s, master := issuerBehindNginx(t, "500ms", "2s")

	w := watchStream(t, s.issuerURL, nil)
	b1, c1 := s.session(t, w, "alice")
	b2, c2 := s.session(t, w, "alice")
	time.Sleep(5 * time.Second) // more than twice nginx's read timeout, with no revocation
	if n := w.connects.Load(); n != 1 {
		t.Fatalf("the idle stream connected %d times in 5 s through nginx; heartbeats should have kept one connection", n)
	}
	logout(t, b1, s.issuerURL)
	w.waitRevoked(t, c1, 5*time.Second, "sign-out through nginx")

	// nginx cuts the stream; a sign-out right then must still arrive.
	if err := master.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "nginx to cut the stream", func() bool { return !w.up.Load() || w.connects.Load() > 1 })
	logout(t, b2, s.issuerURL)
	w.waitRevoked(t, c2, 15*time.Second, "sign-out while nginx cut the stream")
	waitFor(t, 15*time.Second, "the stream to resume through nginx", func() bool { return w.up.Load() && w.connects.Load() >= 2 })
}

// TestStreamNginxIdleCut: nginx's proxy_read_timeout (1 s) shorter than
// the issuer's heartbeat (5 s), the misconfiguration the README warns of:
// nginx closes every idle stream. Each cut costs a reconnection only: the
// client resumes from its cursor, and sign-outs committed while the stream
// is down arrive through the resumed stream (polls are an hour apart).
func TestStreamNginxIdleCut(t *testing.T) {
	t.Parallel()
	nginxPath(t)
	s, _ := issuerBehindNginx(t, "5s", "1s")

	w := watchStream(t, s.issuerURL, nil)
	var sessions []*browser
	var claims []*sso.Claims
	for range 6 {
		b, c := s.session(t, w, "alice")
		sessions, claims = append(sessions, b), append(claims, c)
	}
	// Each sign-out is posted as soon as nginx has cut the stream, so it
	// commits while the client waits to reconnect (its wait grows with each
	// cut); the resume with Last-Event-ID must bring it.
	inGap := 0
	for i := range sessions {
		waitFor(t, 20*time.Second, "nginx to cut the idle stream", func() bool { return !w.up.Load() })
		logout(t, sessions[i], s.issuerURL)
		if !w.up.Load() {
			inGap++
		}
		w.waitRevoked(t, claims[i], 20*time.Second, fmt.Sprintf("sign-out %d while nginx cuts idle streams", i))
		if inGap == 2 {
			break
		}
	}
	if inGap == 0 {
		t.Error("no sign-out was committed while the stream was down: the test did not exercise the resume")
	}
	if n := w.connects.Load(); n < 3 {
		t.Errorf("the stream connected %d times: nginx was expected to cut it at least twice", n)
	}
}

// issuerBehindNginx starts an issuer with the given stream heartbeat behind
// nginx with the given proxy_read_timeout, its URL nginx's port, and the
// user alice; it returns the stack and nginx's master process.
func issuerBehindNginx(t *testing.T, heartbeat, readTimeout string) (*stack, *exec.Cmd) {
	t.Helper()
	s := &stack{dir: t.TempDir(), domain: "domain.localhost"}
	backend := freePort(t)
	s.issuerPort = freePort(t)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, s.issuerPort)
	s.issuerArgs = []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", backend), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys"), "--stream-heartbeat", heartbeat}
	s.issuer = start(t, "issuer", s.issuerArgs...)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", backend), s.issuer)
	master := startNginx(t, s.issuerPort, backend, readTimeout)
	waitHTTP(t, s.issuerURL+"/healthz", s.issuer)
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "alice"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	return s, master
}
