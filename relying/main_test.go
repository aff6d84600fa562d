package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

func noEnv(string) (string, bool) { return "", false }

// TestRuleFlags: the access-rule flags are validated with every other
// problem at once, before anything is served.
func TestRuleFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // in stderr, with exit code 2
	}{
		{"bad group", []string{"--require-group", "admins,Ops"}, []string{"--require-group", "Ops"}},
		{"bad method", []string{"--require-amr", "otp,sms"}, []string{`--require-amr "sms"`, "pwd (", "otp (", "hwk (", "fed (", "mfa ("}},
		{"negative age", []string{"--max-auth-age", "-1m"}, []string{"--max-auth-age -1m0s"}},
		{"all at once", []string{"--require-group", "-x", "--require-amr", "totp", "--max-auth-age", "-1s", "--leeway", "1h"},
			[]string{"--require-group", "--require-amr", "--max-auth-age", "--leeway"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tc.args, noEnv, &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
	var help bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, noEnv, &help, &help); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, f := range []string{"--require-group", "--require-amr", "--max-auth-age", "fed (", "mfa ("} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("--help does not document %s", f)
		}
	}
}

// TestRuleFromFlags: the flags become one rule, all of whose parts apply.
func TestRuleFromFlags(t *testing.T) {
	base := options{host: "{username}.domain.localhost", issuer: "http://domain.localhost:8080", logFormat: "text",
		revocationPoll: time.Second}
	o := base
	o.requireGroup, o.requireAMR, o.maxAuthAge = "admins, ops", "otp,hwk", 10*time.Minute
	cfg, err := o.validate()
	if err != nil || cfg.policy.Hosts[0].Rule() == nil {
		t.Fatalf("validate: %v, policy %+v", err, cfg.policy)
	}
	rule := cfg.policy.Hosts[0].Rule()
	fresh := time.Now().Add(-time.Minute).Unix()
	r := httptest.NewRequest("GET", "http://alice.domain.localhost/", nil)
	for _, tc := range []struct {
		name   string
		claims sso.Claims
		want   error
	}{
		{"all met", sso.Claims{Groups: []string{"ops"}, AMR: []string{"pwd", "otp"}, AuthTime: fresh}, nil},
		{"no group", sso.Claims{AMR: []string{"hwk"}, AuthTime: fresh}, ssohttp.ErrForbidden},
		{"password only", sso.Claims{Groups: []string{"admins"}, AMR: []string{"pwd"}, AuthTime: fresh}, ssohttp.ErrStepUp},
		{"too old", sso.Claims{Groups: []string{"admins"}, AMR: []string{"hwk"}, AuthTime: fresh - 3600}, ssohttp.ErrStepUp},
	} {
		if err := rule(r, &tc.claims); (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if cfg, err := base.validate(); err != nil || cfg.policy.Hosts[0].Rule() != nil {
		t.Errorf("no rule flags: %v; want no rule", err)
	}
}

// TestReadTimeout: a request whose body never arrives is cut off at
// --read-timeout instead of holding its connection forever (red-team 7).
func TestReadTimeout(t *testing.T) {
	read := make(chan error, 1)
	hs := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		read <- err
	}), 200*time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a.domain.localhost\r\nContent-Length: 100\r\n\r\npartial"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("the handler read a whole body that was never sent")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body was still being awaited after 10 s with a 200 ms read timeout")
	}
	fs := []string{"--read-timeout", "-1s"}
	var errb bytes.Buffer
	if code := run(context.Background(), fs, noEnv, &errb, &errb); code != 2 || !strings.Contains(errb.String(), "--read-timeout") {
		t.Fatalf("negative --read-timeout: exit %d: %s", code, errb.String())
	}
}
