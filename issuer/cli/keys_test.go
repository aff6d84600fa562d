package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/keys"
)

// Issue 12: `issuer keys rotate` with its default flags against a fleet that
// serves with --access-ttl 1h and --jwks-max-age 1h.
func TestKeysRotateUsesRecordedFleetValues(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	flags := []string{"--db", filepath.Join(dir, "db"), "--keys", keyDir}
	with := func(args ...string) []string { return append(args, flags...) }

	// A serving instance that started 10 minutes ago, past the CLI's default
	// max-age of 5 minutes, but not past its own of 1h.
	started := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	fleet, err := keys.Open(keyDir, keys.Options{AccessTTL: time.Hour, JWKSMaxAge: time.Hour, Now: func() time.Time { return started }})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Ensure(); err != nil {
		t.Fatal(err)
	}
	promotable := started.Add(time.Hour).UTC().Format(time.RFC3339)

	code, out, errOut := run(t, "", with("keys", "list")...)
	if code != ExitOK || !strings.Contains(out, "PROMOTABLE") || !strings.Contains(out, promotable) {
		t.Errorf("keys list: %d, want the next key promotable at %s\n%s%s", code, promotable, out, errOut)
	}
	code, _, errOut = run(t, "", with("keys", "rotate")...)
	if code != ExitFailure || !strings.Contains(errOut, "too early") || !strings.Contains(errOut, promotable) || !strings.Contains(errOut, "1h0m0s") {
		t.Errorf("keys rotate: %d, want a refusal until %s\n%s", code, promotable, errOut)
	}

	if code, _, errOut := run(t, "", with("keys", "rotate", "--force")...); code != ExitOK {
		t.Fatalf("keys rotate --force: %d\n%s", code, errOut)
	}
	code, out, errOut = run(t, "", with("keys", "list")...)
	if code != ExitOK {
		t.Fatalf("keys list: %d\n%s", code, errOut)
	}
	var deleteAfter time.Time
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == keys.StateRetired {
			if deleteAfter, err = time.Parse(time.RFC3339, f[len(f)-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Retired now, kept for the fleet's 1h plus the margin, not the CLI's 5m.
	if want := time.Now().Add(time.Hour); deleteAfter.Before(want) {
		t.Errorf("retired key deleted after %v, want after %v\n%s", deleteAfter, want, out)
	}
}

// A key retired before key files carried their deadline is kept for the
// longest lifetime the issuer allows.
func TestLegacyRetentionCoversLongestAccessTTL(t *testing.T) {
	if keys.MaxAccessTTL < config.MaxAccessTTL {
		t.Errorf("keys.MaxAccessTTL %s is shorter than the --access-ttl limit %s", keys.MaxAccessTTL, config.MaxAccessTTL)
	}
}
