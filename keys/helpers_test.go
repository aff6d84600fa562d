package keys

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

var algs = []string{wire.AlgEdDSA, wire.AlgES256}

const (
	testMaxAge = 5 * time.Minute
	testTTL    = 5 * time.Minute
)

// fakeClock is the injected clock: lifecycle tests move it instead of
// sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0).UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testOptions(alg string, c *fakeClock) Options {
	return Options{Alg: alg, JWKSMaxAge: testMaxAge, AccessTTL: testTTL, Now: c.Now}
}

func mustOpen(t testing.TB, path string, opts Options) *Dir {
	t.Helper()
	d, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

// ensured returns a Dir on a fresh directory after its first start.
func ensured(t testing.TB, alg string) (*Dir, *fakeClock) {
	t.Helper()
	c := newClock()
	d := mustOpen(t, filepath.Join(t.TempDir(), "keys"), testOptions(alg, c))
	if err := d.Ensure(); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return d, c
}

// byState groups the kids of d's current set by state.
func byState(d *Dir) map[string][]string {
	m := map[string][]string{}
	for _, in := range d.List() {
		m[in.State] = append(m[in.State], in.KID)
	}
	return m
}

// one returns the single key in state, failing when there is not exactly one.
func one(t testing.TB, d *Dir, state string) Info {
	t.Helper()
	var found []Info
	for _, in := range d.List() {
		if in.State == state {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s key, have %d: %+v", state, len(found), d.List())
	}
	return found[0]
}

// kidsOnDisk lists the key files in dir, by kid.
func kidsOnDisk(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range entries {
		if filepath.Ext(e.Name()) == fileExt && e.Name()[0] != '.' {
			kids = append(kids, e.Name()[:len(e.Name())-len(fileExt)])
		}
	}
	slices.Sort(kids)
	return kids
}

func kidsOf(d *Dir) []string {
	var kids []string
	for _, in := range d.List() {
		kids = append(kids, in.KID)
	}
	slices.Sort(kids)
	return kids
}

// plant writes a key file in any state, for sets the API would not make.
func plant(t testing.TB, dir, alg string, m meta) *key {
	t.Helper()
	k, err := generate(alg, m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := encodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(dir, k.kid+fileExt, data); err != nil {
		t.Fatal(err)
	}
	return k
}
