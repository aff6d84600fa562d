package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminCommands creates a user with `issuer user add` while the server
// runs, signs in as them, then disables them: their session ends at once.
func TestAdminCommands(t *testing.T) {
	s := newStack(t, stackOptions{})
	out, err := s.issuerCmd(t, "bobs secret pw\n", "user", "add", "Bob")
	if err != nil || !strings.Contains(out, "created user bob") {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if out, err := s.issuerCmd(t, "another pw!\n", "user", "add", "bob"); err == nil {
		t.Fatalf("adding bob twice succeeded:\n%s", out)
	}
	if out, err := s.issuerCmd(t, "whatever pw\n", "user", "add", "admin"); err == nil || !strings.Contains(out, "reserved") {
		t.Fatalf("reserved name accepted: %v\n%s", err, out)
	}
	out, err = s.issuerCmd(t, "", "user", "list")
	if err != nil || !strings.Contains(out, "bob") || !strings.Contains(out, "active") {
		t.Fatalf("user list: %v\n%s", err, out)
	}

	b := newBrowser(t)
	bob := s.userURL("bob")
	if r := s.signIn(t, b, "bob", "bobs secret pw", bob); r.status != http.StatusSeeOther || r.location != bob {
		t.Fatalf("sign-in as bob: %d %q", r.status, r.location)
	}
	if r := b.navigate(bob); r.status != http.StatusOK {
		t.Fatalf("bob's page: %d", r.status)
	}

	if out, err := s.issuerCmd(t, "", "user", "disable", "bob"); err != nil {
		t.Fatalf("user disable: %v\n%s", err, out)
	}
	// The refresh token no longer works, and the login form refuses bob with the generic message.
	r := b.navigate(s.issuerURL + "/refresh?return_to=" + bob)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login") {
		t.Fatalf("refresh after disable: %d %q", r.status, r.location)
	}
	r = s.signIn(t, b, "bob", "bobs secret pw", bob)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Incorrect username or password.") {
		t.Fatalf("disabled login: %d", r.status)
	}
	if out, err := s.issuerCmd(t, "", "user", "enable", "bob"); err != nil {
		t.Fatalf("user enable: %v\n%s", err, out)
	}
	if r := s.signIn(t, b, "bob", "bobs secret pw", bob); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in after enable: %d", r.status)
	}

	// Usage errors exit 2, unknown users 1.
	if _, err := s.issuerCmd(t, "", "user", "frobnicate"); exitCode(err) != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", exitCode(err))
	}
	if _, err := s.issuerCmd(t, "", "user", "disable", "nobody"); exitCode(err) != 1 {
		t.Fatalf("disable unknown user: exit %d, want 1", exitCode(err))
	}
	if out, err := s.issuerCmd(t, "", "keys", "list"); err != nil || !strings.Contains(out, "active") || !strings.Contains(out, "next") {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}
