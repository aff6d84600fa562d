package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/keys"
)

// TestDoctorChecksEveryAlgorithm: a key directory with an active key for the
// tokens' algorithm but none for the ID tokens' RS256 (as written before the
// provider existed, or after a hand edit) fails doctor's key check, as it
// would fail the OpenID clients; `issuer serve` then creates the missing key.
func TestDoctorChecksEveryAlgorithm(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	base := []string{"--db", filepath.Join(dir, "db"), "--keys", keyDir}
	if code, _, errOut := run(t, "secret password\n", append([]string{"user", "add", "alice"}, base...)...); code != ExitOK {
		t.Fatalf("user add: exit %d: %s", code, errOut)
	}
	old, err := keys.Open(keyDir, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := old.Ready(); err != nil {
		t.Fatalf("the EdDSA-only directory is not ready for EdDSA: %v", err)
	}

	code, out, _ := run(t, "", append([]string{"doctor"}, base...)...)
	line := keyLine(out)
	if code == ExitOK || !strings.HasPrefix(line, "[FAIL]") || !strings.Contains(out, "RS256") {
		t.Errorf("doctor with no RS256 key: exit %d, key line %q, want a failure naming RS256\n%s", code, line, out)
	}

	cfg := config.Default()
	full, err := keys.Open(keyDir, keyOptions(&cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Ensure(); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, "", append([]string{"doctor"}, base...)...)
	if line := keyLine(out); !strings.HasPrefix(line, "[ok  ]") {
		t.Errorf("doctor once every algorithm has a key: key line %q, want ok\n%s", line, out)
	}
}

// keyLine is doctor's key directory line.
func keyLine(out string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, "key directory") {
			return l
		}
	}
	return ""
}
