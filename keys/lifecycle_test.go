package keys

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestEnsureFirstStart(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			d, c := ensured(t, alg)
			now := c.Now()
			active, next := one(t, d, StateActive), one(t, d, StateNext)
			if len(d.List()) != 2 {
				t.Fatalf("first start made %+v, want one active and one next key", d.List())
			}
			for _, in := range []Info{active, next} {
				if in.Alg != alg || !in.Created.Equal(now) || !in.Published.Equal(now) {
					t.Errorf("%+v: want alg %s, created and published %v", in, alg, now)
				}
			}
			if !active.Activated.Equal(now) || !next.Activated.IsZero() {
				t.Errorf("activation times %v and %v", active.Activated, next.Activated)
			}
			if err := d.Ready(); err != nil {
				t.Errorf("Ready: %v", err)
			}
		})
	}
}

func TestEnsureIdempotent(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	before := d.List()
	c.Advance(time.Hour)
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	// A second instance starting on the same directory.
	d2 := mustOpen(t, d.Path(), testOptions(wire.AlgEdDSA, c))
	if err := d2.Ensure(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.List(), before) || !slices.Equal(d2.List(), before) {
		t.Errorf("Ensure changed the set:\nbefore %+v\nafter  %+v\nother  %+v", before, d.List(), d2.List())
	}
	if got := kidsOnDisk(t, d.Path()); !slices.Equal(got, kidsOf(d)) {
		t.Errorf("files %v, set %v", got, kidsOf(d))
	}
}

func TestEnsureWithoutActiveKey(t *testing.T) {
	tests := []struct {
		name         string
		nextAge      time.Duration
		wantPromoted bool
	}{
		{"next published long ago is promoted", time.Hour, true},
		{"next published exactly max-age ago is promoted", testMaxAge, true},
		{"young next is an error", testMaxAge - time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			dir := filepath.Join(t.TempDir(), "keys")
			published := c.Now().Add(-tc.nextAge)
			next := plant(t, dir, wire.AlgEdDSA, meta{State: StateNext, Created: published, Published: published})
			d := mustOpen(t, dir, testOptions(wire.AlgEdDSA, c))
			if !errors.Is(d.Ready(), ErrNoActiveKey) {
				t.Errorf("Ready with no active key: %v", d.Ready())
			}
			err := d.Ensure()
			if !tc.wantPromoted {
				if !errors.Is(err, ErrNoActiveKey) {
					t.Fatalf("Ensure: %v, want ErrNoActiveKey", err)
				}
				when := published.Add(testMaxAge).Format(time.RFC3339)
				if !strings.Contains(err.Error(), when) || !strings.Contains(err.Error(), next.kid) {
					t.Errorf("error %q does not say that %s may sign from %s", err, next.kid, when)
				}
				// A forced rotation is the way out.
				if err := d.Rotate(true); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if got := one(t, d, StateActive); got.KID != next.kid {
				t.Errorf("active key %s, want the old next %s", got.KID, next.kid)
			}
			one(t, d, StateNext)
		})
	}
}

func TestRotate(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration
		force   bool
		wantErr bool
	}{
		{"too early", time.Minute, false, true},
		{"one second too early", testMaxAge - time.Second, false, true},
		{"at max-age", testMaxAge, false, false},
		{"after max-age", time.Hour, false, false},
		{"forced at once", 0, true, false},
		{"forced early", time.Minute, true, false},
	}
	for _, tc := range tests {
		for _, alg := range algs {
			t.Run(tc.name+"/"+alg, func(t *testing.T) {
				d, c := ensured(t, alg)
				published := c.Now()
				oldActive, oldNext := one(t, d, StateActive), one(t, d, StateNext)
				c.Advance(tc.wait)
				err := d.Rotate(tc.force)
				if tc.wantErr {
					var tooEarly *TooEarlyError
					if !errors.As(err, &tooEarly) {
						t.Fatalf("Rotate: %v, want a *TooEarlyError", err)
					}
					allowed := published.Add(testMaxAge)
					if !tooEarly.Allowed.Equal(allowed) || !strings.Contains(err.Error(), allowed.Format(time.RFC3339)) {
						t.Errorf("error %q (Allowed %v), want it to say %v", err, tooEarly.Allowed, allowed)
					}
					if one(t, d, StateActive) != oldActive || one(t, d, StateNext) != oldNext || len(d.List()) != 2 {
						t.Errorf("a refused rotation changed the set: %+v", d.List())
					}
					return
				}
				if err != nil {
					t.Fatalf("Rotate: %v", err)
				}
				now := c.Now()
				active, next, retired := one(t, d, StateActive), one(t, d, StateNext), one(t, d, StateRetired)
				if active.KID != oldNext.KID || !active.Activated.Equal(now) || !active.Published.Equal(oldNext.Published) {
					t.Errorf("active %+v, want %s activated at %v", active, oldNext.KID, now)
				}
				if retired.KID != oldActive.KID || !retired.Retired.Equal(now) || !retired.DeleteAfter.Equal(now.Add(testTTL+DefaultRetireMargin)) {
					t.Errorf("retired %+v, want %s retired at %v", retired, oldActive.KID, now)
				}
				if next.KID == oldNext.KID || next.KID == oldActive.KID || !next.Published.Equal(now) || next.Alg != alg {
					t.Errorf("next %+v, want a fresh %s key published at %v", next, alg, now)
				}
				if got := kidsOnDisk(t, d.Path()); !slices.Equal(got, kidsOf(d)) {
					t.Errorf("files %v, set %v", got, kidsOf(d))
				}
			})
		}
	}
}

func TestRotateWithoutNextKey(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	active := one(t, d, StateActive)
	if err := os.Remove(filepath.Join(d.Path(), one(t, d, StateNext).KID+fileExt)); err != nil {
		t.Fatal(err)
	}
	var tooEarly *TooEarlyError
	if err := d.Rotate(false); !errors.As(err, &tooEarly) || !tooEarly.Allowed.Equal(c.Now().Add(testMaxAge)) {
		t.Fatalf("Rotate: %v, want a *TooEarlyError allowing rotation in %s", err, testMaxAge)
	}
	// The refused rotation still published a next key, so the clock runs.
	next := one(t, d, StateNext)
	c.Advance(testMaxAge)
	if err := d.Rotate(false); err != nil {
		t.Fatal(err)
	}
	if one(t, d, StateActive).KID != next.KID || one(t, d, StateRetired).KID != active.KID {
		t.Errorf("set after rotation: %+v", d.List())
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name    string
		victim  string // state of the revoked key; "" for an unknown kid
		wantErr error
	}{
		{"active", StateActive, nil},
		{"next", StateNext, nil},
		{"retired", StateRetired, nil},
		{"unknown", "", ErrNotFound},
	}
	for _, tc := range tests {
		for _, alg := range algs {
			t.Run(tc.name+"/"+alg, func(t *testing.T) {
				d, c := ensured(t, alg)
				if err := d.Rotate(true); err != nil { // make a retired key
					t.Fatal(err)
				}
				c.Advance(time.Minute)
				before := map[string]Info{}
				for _, in := range d.List() {
					before[in.State] = in
				}
				kid := "no-such-kid"
				if tc.victim != "" {
					kid = before[tc.victim].KID
				}
				err := d.Revoke(kid)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Revoke: %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr != nil {
					if len(d.List()) != 3 {
						t.Errorf("a failed revocation changed the set: %+v", d.List())
					}
					return
				}
				body, _ := d.JWKS()
				if slices.Contains(kidsOnDisk(t, d.Path()), kid) || slices.Contains(kidsOf(d), kid) || strings.Contains(string(body), kid) {
					t.Fatalf("revoked key %s is still there", kid)
				}
				for _, state := range []string{StateActive, StateNext, StateRetired} {
					if state == StateRetired && tc.victim == StateRetired {
						continue
					}
					got := one(t, d, state)
					if state != tc.victim {
						if got != before[state] {
							t.Errorf("%s key changed: %+v, was %+v", state, got, before[state])
						}
						continue
					}
					// The fresh replacement is published, and signs, at once.
					now := c.Now()
					if got.KID == kid || !got.Published.Equal(now) || got.Alg != alg {
						t.Errorf("replacement %s key %+v, want a fresh one published at %v", state, got, now)
					}
					if state == StateActive && !got.Activated.Equal(now) {
						t.Errorf("replacement active key activated at %v, want %v", got.Activated, now)
					}
				}
				token, err := d.Sign([]byte(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				if h := header(t, token); h.Kid != one(t, d, StateActive).KID {
					t.Errorf("signed with %s, want the active key", h.Kid)
				}
			})
		}
	}
}

func TestRetiredKeyDeletion(t *testing.T) {
	tests := []struct {
		name       string
		margin     time.Duration
		wantMargin time.Duration
	}{
		{"default margin", 0, time.Minute},
		{"custom margin", 10 * time.Second, 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			opts := testOptions(wire.AlgEdDSA, c)
			opts.RetireMargin = tc.margin
			d := mustOpen(t, filepath.Join(t.TempDir(), "keys"), opts)
			if err := d.Ensure(); err != nil {
				t.Fatal(err)
			}
			if err := d.Rotate(true); err != nil {
				t.Fatal(err)
			}
			retired := one(t, d, StateRetired)
			if want := retired.Retired.Add(testTTL + tc.wantMargin); !retired.DeleteAfter.Equal(want) {
				t.Fatalf("DeleteAfter %v, want %v", retired.DeleteAfter, want)
			}
			other := mustOpen(t, d.Path(), opts) // sees the deletion through Reload

			c.Advance(testTTL + tc.wantMargin - time.Second)
			if err := d.Reload(); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(kidsOnDisk(t, d.Path()), retired.KID) || one(t, d, StateRetired) != retired {
				t.Fatal("retired key deleted before its tokens expired")
			}

			c.Advance(time.Second)
			if err := other.Reload(); err != nil {
				t.Fatal(err)
			}
			if err := d.Reload(); err != nil {
				t.Fatal(err)
			}
			for _, dd := range []*Dir{d, other} {
				body, _ := dd.JWKS()
				if slices.Contains(kidsOf(dd), retired.KID) || strings.Contains(string(body), retired.KID) {
					t.Errorf("retired key still published: %+v", dd.List())
				}
			}
			if slices.Contains(kidsOnDisk(t, d.Path()), retired.KID) {
				t.Error("retired key file not deleted")
			}
			if len(d.List()) != 2 {
				t.Errorf("set %+v, want active and next", d.List())
			}
		})
	}
}

func TestRepairsTwoActiveKeys(t *testing.T) {
	c := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	now := c.Now()
	older := plant(t, dir, wire.AlgEdDSA, meta{State: StateActive, Created: now, Published: now, Activated: now.Add(-time.Hour)})
	newer := plant(t, dir, wire.AlgEdDSA, meta{State: StateActive, Created: now, Published: now, Activated: now})
	plant(t, dir, wire.AlgEdDSA, meta{State: StateNext, Created: now, Published: now})
	d := mustOpen(t, dir, testOptions(wire.AlgEdDSA, c))
	token, err := d.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if kid := header(t, token).Kid; kid != newer.kid {
		t.Errorf("signed with %s, want the newer active key %s", kid, newer.kid)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := one(t, d, StateActive); got.KID != newer.kid {
		t.Errorf("active %s, want %s", got.KID, newer.kid)
	}
	if got := one(t, d, StateRetired); got.KID != older.kid || !got.Retired.Equal(now) {
		t.Errorf("retired %+v, want %s retired now", got, older.kid)
	}
}

func TestAlgorithmChange(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	edKID := one(t, d, StateActive).KID
	// An instance with the other access-token algorithm starts on the
	// directory: it adds that algorithm's lifecycle and leaves EdDSA's alone.
	es := mustOpen(t, d.Path(), testOptions(wire.AlgES256, c))
	if err := es.Ensure(); err != nil {
		t.Fatal(err)
	}
	active := map[string]string{}
	for _, in := range es.List() {
		if in.State == StateActive {
			active[in.Alg] = in.KID
		}
	}
	if len(es.List()) != 4 || active[wire.AlgEdDSA] != edKID || active[wire.AlgES256] == "" {
		t.Fatalf("set after the change: %+v", es.List())
	}
	token := mustSign(t, es)
	if h := header(t, token); h.Alg != wire.AlgES256 || h.Kid != active[wire.AlgES256] {
		t.Errorf("access token header %+v, want the ES256 key %s", h, active[wire.AlgES256])
	}
	if err := verifyWithJWKS(t, es, token); err != nil {
		t.Error(err)
	}
	// The EdDSA instance keeps signing with EdDSA only.
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if h := header(t, mustSign(t, d)); h.Kid != edKID {
		t.Errorf("EdDSA instance signed with %+v", h)
	}
}

func TestOptionsValidation(t *testing.T) {
	_, err := Open(t.TempDir(), Options{Alg: "RS256", JWKSMaxAge: -1, AccessTTL: -1, RetireMargin: -1})
	if err == nil {
		t.Fatal("Open accepted invalid options")
	}
	for _, want := range []string{"RS256", "max-age", "access TTL", "retire margin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open accepted an empty path")
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	d := mustOpen(t, dir, Options{})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the directory: %v", err)
	}
	if _, err := d.Sign([]byte(`{}`)); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("Sign: %v, want ErrNoActiveKey", err)
	}
	if !errors.Is(d.Ready(), ErrNoActiveKey) {
		t.Errorf("Ready: %v, want ErrNoActiveKey", d.Ready())
	}
	if body, _ := d.JWKS(); string(body) != `{"keys":[]}` {
		t.Errorf("JWKS %s", body)
	}
	if err := d.Reload(); err != nil {
		t.Errorf("Reload: %v", err)
	}
	if len(d.List()) != 0 {
		t.Errorf("List %+v", d.List())
	}
}
