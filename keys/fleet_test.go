package keys

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// The CLI's defaults, against a fleet serving with longer ones.
const (
	cliTTL    = 5 * time.Minute
	cliMaxAge = 5 * time.Minute
)

// fleetDir starts a serving instance with the given flags on a fresh
// directory, and opens a second Dir on it as `issuer keys` does with its
// default flags.
func fleetDir(t *testing.T, ttl, maxAge time.Duration) (fleet, cli *Dir, c *fakeClock) {
	t.Helper()
	c = newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	fleet = mustOpen(t, dir, Options{AccessTTL: ttl, JWKSMaxAge: maxAge, Now: c.Now})
	if err := fleet.Ensure(); err != nil {
		t.Fatal(err)
	}
	cli = mustOpen(t, dir, Options{AccessTTL: cliTTL, JWKSMaxAge: cliMaxAge, Now: c.Now})
	return fleet, cli, c
}

// readFleet returns the members of the directory's record file.
func readFleet(t *testing.T, dir string) map[string]any {
	t.Helper()
	path := filepath.Join(dir, fleetName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("record file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("record file mode %04o, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("record file %s: %v", data, err)
	}
	return m
}

func onDisk(t *testing.T, d *Dir, kid string) bool {
	t.Helper()
	return slices.Contains(kidsOnDisk(t, d.Path()), kid)
}

// Issue 12: `issuer keys rotate` with its default --access-ttl deleted keys
// that a fleet serving 1h tokens still needed.
func TestCLIRotationKeepsRetiredKeyForFleetLifetime(t *testing.T) {
	fleet, cli, c := fleetDir(t, time.Hour, cliMaxAge)
	c.Advance(cliMaxAge)
	if err := cli.Rotate(false); err != nil {
		t.Fatal(err)
	}
	retired := one(t, cli, StateRetired)
	deadline := retired.Retired.Add(time.Hour + DefaultRetireMargin)
	if !retired.DeleteAfter.Equal(deadline) {
		t.Errorf("CLI lists DeleteAfter %v, want %v", retired.DeleteAfter, deadline)
	}

	c.Advance(10 * time.Minute)
	for _, d := range []*Dir{cli, fleet} { // either may run the cleanup
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.Rotate(true); err != nil { // so does a change
		t.Fatal(err)
	}
	if !onDisk(t, cli, retired.KID) || !slices.Contains(kidsOf(fleet), retired.KID) {
		t.Fatalf("retired key %s deleted 10 minutes after retirement, its 1h tokens still live", retired.KID)
	}
	if got := fleet.List(); !slices.ContainsFunc(got, func(in Info) bool { return in.KID == retired.KID && in.DeleteAfter.Equal(deadline) }) {
		t.Errorf("fleet lists %+v, want %s deleted after %v", got, retired.KID, deadline)
	}

	c.Advance(deadline.Sub(c.Now()) - time.Second)
	if err := cli.Reload(); err != nil {
		t.Fatal(err)
	}
	if !onDisk(t, cli, retired.KID) {
		t.Fatal("retired key deleted a second before its deadline")
	}
	c.Advance(time.Second)
	if err := cli.Reload(); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, cli, retired.KID) {
		t.Fatal("retired key still there after its deadline")
	}
}

func TestCLICannotPromoteBeforeFleetMaxAge(t *testing.T) {
	_, cli, c := fleetDir(t, cliTTL, time.Hour)
	next := one(t, cli, StateNext)
	allowed := next.Published.Add(time.Hour)
	if !next.Promotable.Equal(allowed) {
		t.Errorf("CLI lists next as promotable at %v, want %v", next.Promotable, allowed)
	}
	for _, wait := range []time.Duration{cliMaxAge, time.Hour - time.Second} {
		c.Advance(wait - c.Now().Sub(next.Published))
		var early *TooEarlyError
		if err := cli.Rotate(false); !errors.As(err, &early) {
			t.Fatalf("Rotate %s after publication: %v, want a *TooEarlyError", wait, err)
		} else if !early.Allowed.Equal(allowed) || !strings.Contains(err.Error(), allowed.Format(time.RFC3339)) {
			t.Errorf("refusal %q (Allowed %v), want it to say %v", err, early.Allowed, allowed)
		}
		if one(t, cli, StateNext).KID != next.KID {
			t.Fatal("a refused rotation changed the set")
		}
	}
	c.Advance(time.Second)
	if err := cli.Rotate(false); err != nil {
		t.Fatalf("Rotate at the fleet's max-age: %v", err)
	}
	if one(t, cli, StateActive).KID != next.KID {
		t.Errorf("active %+v, want %s", one(t, cli, StateActive), next.KID)
	}
}

func TestForcedRotationIgnoresRecordedMaxAge(t *testing.T) {
	_, cli, _ := fleetDir(t, cliTTL, time.Hour)
	next := one(t, cli, StateNext)
	if err := cli.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if one(t, cli, StateActive).KID != next.KID {
		t.Errorf("forced rotation did not promote %s", next.KID)
	}
}

// A retired key written before keys carried their deadline: nobody knows
// which lifetime its tokens had, so it is kept for the longest one.
func TestLegacyRetiredKeyKeptForLongestLifetime(t *testing.T) {
	tests := []struct {
		name     string
		fleetTTL time.Duration // 0: no serving instance has recorded anything
		wantTTL  time.Duration
	}{
		{"nothing recorded", 0, time.Hour},
		{"shorter lifetime recorded", 5 * time.Minute, time.Hour},
		{"longer lifetime recorded", 2 * time.Hour, 2 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			dir := filepath.Join(t.TempDir(), "keys")
			now := c.Now()
			old := plant(t, dir, wire.AlgEdDSA, meta{State: StateRetired, Created: now, Published: now, Activated: now, Retired: now})
			plant(t, dir, wire.AlgEdDSA, meta{State: StateActive, Created: now, Published: now, Activated: now})
			plant(t, dir, wire.AlgEdDSA, meta{State: StateNext, Created: now, Published: now})
			if tc.fleetTTL > 0 {
				if err := mustOpen(t, dir, Options{AccessTTL: tc.fleetTTL, Now: c.Now}).Ensure(); err != nil {
					t.Fatal(err)
				}
			}
			cli := mustOpen(t, dir, Options{AccessTTL: cliTTL, JWKSMaxAge: cliMaxAge, Now: c.Now})
			deadline := now.Add(tc.wantTTL + DefaultRetireMargin)
			if got := one(t, cli, StateRetired); !got.DeleteAfter.Equal(deadline) {
				t.Errorf("DeleteAfter %v, want %v", got.DeleteAfter, deadline)
			}

			c.Advance(10 * time.Minute)
			if err := cli.Reload(); err != nil {
				t.Fatal(err)
			}
			if !onDisk(t, cli, old.kid) {
				t.Fatal("legacy retired key deleted after 10 minutes")
			}
			// Migrated: the file now says its deadline itself.
			data, err := os.ReadFile(filepath.Join(dir, old.kid+fileExt))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			if got, ok := m["canopy_delete_after"].(float64); !ok || int64(got) != deadline.Unix() {
				t.Errorf("canopy_delete_after %v, want %d", m["canopy_delete_after"], deadline.Unix())
			}

			c.Advance(deadline.Sub(c.Now()) - time.Second)
			if err := cli.Reload(); err != nil {
				t.Fatal(err)
			}
			if !onDisk(t, cli, old.kid) {
				t.Fatal("legacy retired key deleted before its deadline")
			}
			c.Advance(time.Second)
			if err := cli.Reload(); err != nil {
				t.Fatal(err)
			}
			if onDisk(t, cli, old.kid) {
				t.Fatal("legacy retired key still there after its deadline")
			}
		})
	}
}

func TestRecordedValuesOnlyGrow(t *testing.T) {
	c := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	steps := []struct {
		ttl, maxAge            time.Duration
		wantTTLSec, wantMaxSec float64
	}{
		{time.Hour, 10 * time.Minute, 3600, 600},
		{5 * time.Minute, 5 * time.Minute, 3600, 600}, // a smaller start changes nothing
		{30 * time.Minute, time.Hour, 3600, 3600},
		{1500 * time.Millisecond, 0, 3600, 3600},
	}
	for i, s := range steps {
		d := mustOpen(t, dir, Options{AccessTTL: s.ttl, JWKSMaxAge: s.maxAge, Now: c.Now})
		if err := d.Ensure(); err != nil {
			t.Fatal(err)
		}
		m := readFleet(t, dir)
		if m["largest_access_ttl_seconds"] != s.wantTTLSec || m["largest_jwks_max_age_seconds"] != s.wantMaxSec {
			t.Errorf("step %d (%s, %s): record %v, want %v s and %v s", i, s.ttl, s.maxAge, m, s.wantTTLSec, s.wantMaxSec)
		}
	}
}

// `issuer keys rotate|revoke|list` are not serving: whatever their flags,
// they record nothing.
func TestKeyCommandsRecordNothing(t *testing.T) {
	fleet, _, c := fleetDir(t, cliTTL, cliMaxAge)
	before := readFleet(t, fleet.Path())
	big := mustOpen(t, fleet.Path(), Options{AccessTTL: time.Hour, JWKSMaxAge: time.Hour, Now: c.Now})
	if err := big.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if err := big.Revoke(one(t, big, StateNext).KID); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := big.Reload(); err != nil {
		t.Fatal(err)
	}
	big.List()
	if after := readFleet(t, fleet.Path()); after["largest_access_ttl_seconds"] != before["largest_access_ttl_seconds"] ||
		after["largest_jwks_max_age_seconds"] != before["largest_jwks_max_age_seconds"] {
		t.Errorf("record changed from %v to %v", before, after)
	}
}

func TestRefusesBadRecordFile(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		mode    os.FileMode
		wantMsg string
	}{
		{"not JSON", `{"canopy_fleet":`, 0o600, "not a key directory record"},
		{"empty", ``, 0o600, "not a key directory record"},
		{"an array", `[1,2]`, 0o600, "not a key directory record"},
		{"someone else's JSON", `{"name":"x"}`, 0o600, "unknown field"},
		{"a member missing", `{"canopy_fleet":1,"largest_access_ttl_seconds":60}`, 0o600, "want canopy_fleet, largest_access_ttl_seconds and"},
		{"another format", `{"canopy_fleet":2,"largest_access_ttl_seconds":60,"largest_jwks_max_age_seconds":60}`, 0o600, "canopy_fleet 2, want 1"},
		{"negative", `{"canopy_fleet":1,"largest_access_ttl_seconds":-1,"largest_jwks_max_age_seconds":60}`, 0o600, "largest_access_ttl_seconds -1"},
		{"huge", `{"canopy_fleet":1,"largest_access_ttl_seconds":60,"largest_jwks_max_age_seconds":9223372036854775807}`, 0o600, "largest_jwks_max_age_seconds 9223372036854775807"},
		{"fraction", `{"canopy_fleet":1,"largest_access_ttl_seconds":1.5,"largest_jwks_max_age_seconds":60}`, 0o600, "not a key directory record"},
		{"two objects", `{"canopy_fleet":1,"largest_access_ttl_seconds":60,"largest_jwks_max_age_seconds":60}{}`, 0o600, "data after"},
		{"loose mode", `{"canopy_fleet":1,"largest_access_ttl_seconds":60,"largest_jwks_max_age_seconds":60}`, 0o644, "mode 0644"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, c := ensured(t, wire.AlgEdDSA)
			path := filepath.Join(d.Path(), fleetName)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			check := func(op string, err error) {
				t.Helper()
				var fe *FileError
				if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("%s: error %v, want a *FileError naming %s and saying %q", op, err, path, tc.wantMsg)
				}
			}
			_, err := Open(d.Path(), testOptions(wire.AlgEdDSA, c))
			check("Open", err)
			check("Ensure", d.Ensure())
			check("Rotate", d.Rotate(true))
			check("Reload", d.Reload())
			if _, err := d.Sign([]byte(`{}`)); err != nil {
				t.Errorf("Sign after a failed reload: %v", err)
			}
		})
	}
}

// A serving instance writes its values back when the record is gone, so
// removing a record that grew too large by hand is safe.
func TestServingInstanceRecordsAgain(t *testing.T) {
	fleet, cli, _ := fleetDir(t, time.Hour, 10*time.Minute)
	path := filepath.Join(fleet.Path(), fleetName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := cli.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a Dir that does not serve recorded its values: %v", err)
	}
	if err := fleet.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := readFleet(t, fleet.Path()); m["largest_access_ttl_seconds"] != 3600.0 || m["largest_jwks_max_age_seconds"] != 600.0 {
		t.Errorf("record after Reload: %v", m)
	}
}

func TestFleetRoundTrip(t *testing.T) {
	for _, f := range []fleet{{}, {AccessTTL: time.Hour, JWKSMaxAge: 24 * time.Hour}, {AccessTTL: maxRecorded, JWKSMaxAge: time.Second}} {
		data, err := encodeFleet(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFleet(data)
		if err != nil || got != f {
			t.Errorf("round trip of %+v: %+v, %v\n%s", f, got, err, data)
		}
	}
}

func FuzzDecodeFleet(f *testing.F) {
	f.Add([]byte(`{"canopy_fleet":1,"largest_access_ttl_seconds":3600,"largest_jwks_max_age_seconds":300}`))
	f.Add([]byte(`{"canopy_fleet":1,"largest_access_ttl_seconds":-1,"largest_jwks_max_age_seconds":1e30}`))
	f.Add([]byte(`{"canopy_fleet":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeFleet(data)
		if err != nil {
			return
		}
		if got.AccessTTL < 0 || got.JWKSMaxAge < 0 || got.AccessTTL > maxRecorded || got.JWKSMaxAge > maxRecorded {
			t.Fatalf("accepted out-of-range record %+v from %q", got, data)
		}
		again, err := encodeFleet(got)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := decodeFleet(again); err != nil || back != got {
			t.Fatalf("re-encoding %+v gave %+v, %v", got, back, err)
		}
	})
}
