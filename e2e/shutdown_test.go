package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown sends SIGTERM while a login (an argon2id hash) is in
// flight: the login still completes, the process exits 0 and the database is
// closed cleanly (its WAL checkpointed away).
func TestGracefulShutdown(t *testing.T) {
	s := newStack(t, stackOptions{extra: []string{"--log-format", "json"}})
	b := newBrowser(t)
	if r := s.signUp(t, b, "alice", alicePW, s.userURL("alice")); r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", r.status)
	}
	page := b.navigate(s.issuerURL + "/login?prompt=login")
	form := url.Values{"username": {"alice"}, "password": {alicePW}, "csrf_token": {csrf(t, page.body)}}
	done := make(chan response, 1)
	go func() { done <- b.post(s.issuerURL+"/login", form, s.issuerURL) }()
	time.Sleep(20 * time.Millisecond) // the hash is running now
	if err := s.issuer.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.status != http.StatusSeeOther {
			t.Fatalf("in-flight login during shutdown: %d", r.status)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("in-flight login never finished")
	}
	select {
	case <-s.issuer.done:
	case <-time.After(15 * time.Second):
		t.Fatal("issuer did not exit after SIGTERM")
	}
	if code := s.issuer.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if fi, err := os.Stat(filepath.Join(s.dir, "issuer.db-wal")); err == nil && fi.Size() > 0 {
		t.Fatalf("the WAL was left with %d bytes: the database was not closed cleanly", fi.Size())
	}
	// --log-format json: every line is a JSON object.
	for _, line := range strings.Split(strings.TrimSpace(s.issuer.Output()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(s.issuer.Output(), `"msg":"shutting down"`) {
		t.Fatal("no shutdown line in the log")
	}
}
