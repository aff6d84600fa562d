package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := func(string) (string, bool) { return "", false }
	code := Main(context.Background(), args, env, IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestHelpAndUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"top help", []string{"--help"}, ExitOK, "Usage: issuer"},
		{"serve help", []string{"serve", "--help"}, ExitOK, "--access-ttl"},
		{"user help", []string{"user", "--help"}, ExitOK, "set-password NAME"},
		{"user add help", []string{"user", "add", "-h"}, ExitOK, "set-password NAME"},
		{"keys help", []string{"keys", "--help"}, ExitOK, "rotate [--force]"},
		{"help command", []string{"help", "keys"}, ExitOK, "revoke KID"},
		{"unknown command", []string{"frobnicate"}, ExitUsage, ""},
		{"unknown flag", []string{"--nope"}, ExitUsage, ""},
		{"user without command", []string{"user"}, ExitUsage, ""},
		{"user add without name", []string{"user", "add"}, ExitUsage, ""},
		{"keys revoke without kid", []string{"keys", "revoke"}, ExitUsage, ""},
		{"serve with an argument", []string{"serve", "extra"}, ExitUsage, ""},
		{"bad duration", []string{"--access-ttl", "soon"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, "", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Fatalf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if tt.wantCode == ExitUsage && !strings.Contains(errOut, "issuer --help") {
				t.Fatalf("a usage error does not point at --help: %q", errOut)
			}
		})
	}
}

func TestServeRefusesBrokenConfigListingEveryProblem(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := run(t, "", "serve", "--url", "http://localhost:8080", "--alg", "RS256",
		"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys"))
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{"http is allowed only", "single-label", "--alg"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
}

func TestUserLifecycleAndKeys(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	with := func(args ...string) []string { return append(args, flags...) }
	if code, out, errOut := run(t, "secret password\n", with("user", "add", "Alice")...); code != ExitOK || !strings.Contains(out, "created user alice") {
		t.Fatalf("user add: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, "short\n", with("user", "add", "bob")...); code != ExitFailure || !strings.Contains(errOut, "at least") {
		t.Fatalf("short password: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "", with("user", "add", "carol")...); code != ExitFailure || !strings.Contains(errOut, "no password on stdin") {
		t.Fatalf("no password: %d %s", code, errOut)
	}
	if code, _, _ := run(t, "", with("user", "delete", "alice")...); code != ExitOK {
		t.Fatalf("delete: %d", code)
	}
	// The name stays reserved forever.
	if code, _, errOut := run(t, "another password\n", with("user", "add", "alice")...); code != ExitFailure || !strings.Contains(errOut, "never reused") {
		t.Fatalf("re-adding a deleted name: %d %s", code, errOut)
	}
	// keys: no key directory yet without serve.
	if code, _, _ := run(t, "", with("keys", "rotate")...); code != ExitFailure {
		t.Fatalf("rotate with no keys: %d", code)
	}
	code, out, _ := run(t, "", with("events")...)
	if code != ExitOK || !strings.Contains(out, "admin_user_add") || !strings.Contains(out, "admin_user_delete") {
		t.Fatalf("events: %d\n%s", code, out)
	}
}

// TestServeSeveralDomainsRefused: several --url (or a comma list in
// CANOPY_ISSUER_URL) are each checked, with one message listing every problem.
func TestServeSeveralDomainsRefused(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := run(t, "", "serve", "--url", "https://domain.com", "--url", "http://other.localhost:8080",
		"--url", "https://eu.domain.com", "--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys"))
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{"first one's scheme", "overlaps the cookie domain"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	var out, errb bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "CANOPY_ISSUER_URL" {
			return "https://domain.com,https://domain.com:8443", true
		}
		return "", false
	}
	code = Main(context.Background(), []string{"serve", "--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}, env,
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	if code != ExitFailure || !strings.Contains(errb.String(), "its host is another --url's too") {
		t.Errorf("CANOPY_ISSUER_URL with one host twice: exit %d\n%s", code, errb.String())
	}
}
