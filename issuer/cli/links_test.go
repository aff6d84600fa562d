package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEnv is run with an environment.
func runEnv(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Main(context.Background(), args, lookup, IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// TestUserLinkUnlink: an administrator links a provider's subject to a
// user, with the provider configured in CANOPY_ISSUER_IDP as for serve.
func TestUserLinkUnlink(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"CANOPY_ISSUER_DB":   filepath.Join(dir, "db"),
		"CANOPY_ISSUER_KEYS": filepath.Join(dir, "keys"),
		"CANOPY_ISSUER_IDP":  "name=corp,issuer=https://idp.example,client-id=x,client-secret-file=/nonexistent;name=dex,issuer=https://dex.example,client-id=y,client-secret-file=/nonexistent",
	}
	if code, _, errOut := runEnv(t, env, "secret password\n", "user", "add", "alice"); code != ExitOK {
		t.Fatalf("user add: %s", errOut)
	}
	if code, _, errOut := runEnv(t, env, "secret password\n", "user", "add", "bob"); code != ExitOK {
		t.Fatalf("user add: %s", errOut)
	}
	code, out, errOut := runEnv(t, env, "", "user", "link", "alice", "--idp", "corp", "--subject", "248289761001")
	if code != ExitOK || !strings.Contains(out, `linked alice to subject "248289761001" at corp`) {
		t.Fatalf("link: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runEnv(t, env, "", "user", "link", "bob", "--idp", "corp", "--subject", "248289761001"); code != ExitFailure ||
		!strings.Contains(errOut, `linked to user "alice" already`) {
		t.Fatalf("link of a taken subject: %d %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "link", "alice", "--idp", "nope", "--subject", "s"}, `no provider "nope"`},
		{[]string{"user", "link", "alice", "--idp", "corp"}, "needs --subject"},
		{[]string{"user", "link", "alice", "--subject", "s"}, "needs --idp NAME"},
		{[]string{"user", "disable", "alice", "--subject", "s"}, "--subject goes with user link"},
	} {
		if code, _, errOut := runEnv(t, env, "", tc.args...); code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: %d %q, want usage error %q", tc.args, code, errOut, tc.want)
		}
	}
	// A link to a provider no longer configured still unlinks.
	if code, _, errOut := runEnv(t, env, "", "user", "link", "bob", "--idp", "dex", "--subject", "dex-bob"); code != ExitOK {
		t.Fatalf("link bob at dex: %d %s", code, errOut)
	}
	gone := map[string]string{"CANOPY_ISSUER_DB": env["CANOPY_ISSUER_DB"], "CANOPY_ISSUER_KEYS": env["CANOPY_ISSUER_KEYS"],
		"CANOPY_ISSUER_IDP": "name=corp,issuer=https://idp.example,client-id=x,client-secret-file=/nonexistent"}
	if code, out, errOut := runEnv(t, gone, "", "user", "unlink", "bob", "--idp", "dex"); code != ExitOK || !strings.Contains(out, "unlinked bob from dex") {
		t.Fatalf("unlink of a provider no longer configured: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runEnv(t, gone, "", "user", "unlink", "bob", "--idp", "dex"); code != ExitFailure || !strings.Contains(errOut, "has no link") {
		t.Fatalf("unlink again: %d %s", code, errOut)
	}
	if code, out, errOut := runEnv(t, env, "", "user", "unlink", "alice", "--idp", "corp"); code != ExitOK || !strings.Contains(out, "unlinked alice from corp") {
		t.Fatalf("unlink: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runEnv(t, env, "", "user", "unlink", "alice", "--idp", "corp"); code != ExitFailure || !strings.Contains(errOut, "has no link") {
		t.Fatalf("unlink again: %d %s", code, errOut)
	}
	code, out, _ = runEnv(t, env, "", "events")
	if code != ExitOK || !strings.Contains(out, "upstream_link") || !strings.Contains(out, "upstream_unlink") {
		t.Fatalf("events: %s", out)
	}
}

// TestServeSecretNeverShown: serve refuses a bad secret file without
// printing a byte of it, and --idp has no key for the secret itself.
func TestServeSecretNeverShown(t *testing.T) {
	dir := t.TempDir()
	const secret = "Zq9-very-secret-client-value"
	bad := filepath.Join(dir, "secret")
	if err := os.WriteFile(bad, []byte(secret+"\n"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, idp := range []string{
		"name=corp,issuer=https://idp.example,client-id=x,client-secret-file=" + bad,
		"name=corp,issuer=https://idp.example,client-id=x,client-secret=" + secret,
	} {
		code, out, errOut := run(t, "", "serve", "--idp", idp, "--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys"))
		if code == ExitOK {
			t.Fatalf("serve accepted %q", idp)
		}
		if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, "Zq9") {
			t.Fatalf("the secret was printed:\n%s%s", out, errOut)
		}
		if !strings.Contains(errOut, "client-secret") {
			t.Fatalf("the error does not name the problem: %s", errOut)
		}
	}
	// doctor checks the file too, without showing it.
	code, out, errOut := run(t, "", "doctor", "--idp", "name=corp,issuer=https://idp.example,client-id=x,client-secret-file="+bad,
		"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys"))
	if code == ExitOK || !strings.Contains(out+errOut, "one line") || strings.Contains(out+errOut, "Zq9") {
		t.Fatalf("doctor: %d\n%s%s", code, out, errOut)
	}
}
