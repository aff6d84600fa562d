package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlite"
)

// TestEventsEscapesTypedText: a username typed at the login form with a
// newline or terminal escapes is stored as typed, but `issuer events` shows
// it escaped: one event is one line, and nothing reaches the terminal that
// could forge a line, recolour it or move the cursor.
func TestEventsEscapesTypedText(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	s, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := "x\n2030-01-01T00:00:00Z  admin_user_delete  root  -  command line"
	for _, e := range []store.Event{
		{At: time.Now(), Kind: "login_failed", IP: "192.0.2.1", Detail: "username " + forged},
		{At: time.Now(), Kind: "login_failed", IP: "192.0.2.1", Detail: "username \x1b[2J\x1b]0;owned\x07\u202e\x9b31m"},
		{At: time.Now(), Kind: "passkey_added", Username: "alice", UserID: "u1", Detail: "my\tkey\r"},
	} {
		if err := s.AddEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	code, out, errOut := run(t, "", "events", "--db", db, "--keys", filepath.Join(dir, "keys"))
	if code != ExitOK {
		t.Fatalf("events: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Errorf("3 events printed as %d lines, want 4 with the header:\n%s", len(lines), out)
	}
	for _, r := range out {
		if r != '\n' && r != ' ' && !unicode.IsGraphic(r) {
			t.Errorf("events output carries %U:\n%q", r, out)
		}
	}
	// The forged "line" stays inside its event's detail, whether the store
	// cleaned the newline (U+FFFD) or the printer escaped it.
	inline := false
	for _, l := range lines {
		inline = inline || (strings.Contains(l, "username x") && strings.Contains(l, "admin_user_delete"))
	}
	if !inline {
		t.Errorf("the forged line is not kept inside its event:\n%s", out)
	}
}
