package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReservationAppliesToNewNamesOnly: a name added to --reserved-names
// after its user exists can no longer be registered by anyone else, but the
// administrator can still manage the user who has it.
func TestReservationAppliesToNewNamesOnly(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	for _, name := range []string{"alice", "press"} {
		if code, _, errOut := run(t, "secret password\n", append([]string{"user", "add", name}, base...)...); code != ExitOK {
			t.Fatalf("user add %s: exit %d: %s", name, code, errOut)
		}
	}
	file := filepath.Join(dir, "reserved.txt")
	if err := os.WriteFile(file, []byte("alice\npress\nnews\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reserved := append([]string{"--reserved-names", file}, base...)
	steps := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"new reserved name refused", "secret password\n", []string{"user", "add", "news"}, ExitUsage, ""},
		{"disable", "", []string{"user", "disable", "alice"}, ExitOK, "disabled user alice"},
		{"enable", "", []string{"user", "enable", "ALICE"}, ExitOK, "enabled user alice"},
		{"set-password", "another password\n", []string{"user", "set-password", "alice"}, ExitOK, "set the password of alice"},
		{"reset-factors", "", []string{"user", "reset-factors", "alice"}, ExitOK, "alice"},
		{"group add", "", []string{"group", "add", "alice", "ops"}, ExitOK, "added alice to ops"},
		{"group list", "", []string{"group", "list", "alice"}, ExitOK, "ops"},
		{"group remove", "", []string{"group", "remove", "alice", "ops"}, ExitOK, "removed alice"},
		{"events", "", []string{"events", "alice"}, ExitOK, "admin_user_disable"},
		{"delete", "", []string{"user", "delete", "press"}, ExitOK, "deleted user press"},
		{"a deleted reserved name stays taken", "secret password\n", []string{"user", "add", "press"}, ExitUsage, ""},
	}
	for _, st := range steps {
		code, out, errOut := run(t, st.stdin, append(st.args, reserved...)...)
		if code != st.code || !strings.Contains(out, st.out) {
			t.Errorf("%s: exit %d, want %d\nstdout: %q (want %q)\nstderr: %q", st.name, code, st.code, out, st.out, errOut)
		}
	}
}

// TestIssuerHostLabelReserved: with the issuer on idp.example.com, nobody may
// own the user page idp.example.com; doctor warns about users who already own
// the issuer's label or a reserved name.
func TestIssuerHostLabelReserved(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys")}
	// Before the issuer moved to idp.example.com, someone registered idp and alice.
	for _, name := range []string{"idp", "alice", "bob"} {
		if code, _, errOut := run(t, "secret password\n", append([]string{"user", "add", name}, base...)...); code != ExitOK {
			t.Fatalf("user add %s: exit %d: %s", name, code, errOut)
		}
	}
	file := filepath.Join(dir, "reserved.txt")
	if err := os.WriteFile(file, []byte("alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := append([]string{"--url", "https://idp.example.com", "--cookie-domain", "example.com", "--reserved-names", file}, base...)
	code, out, errOut := run(t, "secret password\n", append([]string{"user", "add", "IDP"}, prod...)...)
	if code != ExitUsage || !strings.Contains(errOut, "reserved") {
		t.Errorf("user add IDP under https://idp.example.com: exit %d, want %d (reserved)\n%s%s", code, ExitUsage, out, errOut)
	}
	// Deeper issuer hosts reserve the label right under the cookie domain: eu.example.com is no user's page.
	deep := append([]string{"--url", "https://auth.eu.example.com", "--cookie-domain", "example.com"}, base...)
	if code, out, errOut := run(t, "secret password\n", append([]string{"user", "add", "eu"}, deep...)...); code != ExitUsage {
		t.Errorf("user add eu under https://auth.eu.example.com: exit %d, want %d\n%s%s", code, ExitUsage, out, errOut)
	}
	_, out, _ = run(t, "", append([]string{"doctor"}, prod...)...)
	for _, want := range []string{"[warn]", "idp", "alice"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bob") {
		t.Errorf("doctor names bob, who owns no reserved name:\n%s", out)
	}
}
