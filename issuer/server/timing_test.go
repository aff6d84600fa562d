package server

import (
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/password"
)

// TestLoginTiming: an unknown user costs the same time as a wrong password
// (the dummy hash), measured through HTTP with the production argon2id
// parameters. Attempts alternate, and which comes first alternates per
// round, so that drift in the machine's load hits both alike. Both medians
// come from one run. Other test binaries sharing the CPUs can still skew a
// run (a bimodal load puts a median between the modes), so a run over the
// limit is measured afresh, twice at most: a real difference exceeds it in
// every run, and each run's ratio is logged.
func TestLoginTiming(t *testing.T) {
	const rounds = 40
	const maxRatio = 1.25
	const runs = 3
	params := password.OWASP
	h := newHarness(t, options{params: &params, noThrottle: true, dir: memDir(t)})
	h.createUser("alice", "correct horse battery")
	b := h.browser()
	tok := b.token()
	kinds := []struct {
		name     string
		username string
	}{
		{"unknown user", "nobody"},
		{"wrong password", "alice"},
	}
	attempt := func(name, pw string) time.Duration {
		form := url.Values{"username": {name}, "password": {pw}, "csrf_token": {tok}}
		start := time.Now()
		r := b.post("/login", form)
		d := time.Since(start)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login as %s: status %d, want 401", name, r.StatusCode)
		}
		return d
	}
	for _, k := range kinds { // warm up: page cache, connection, allocator
		attempt(k.username, "wrong horse battery")
		attempt(k.username, "wrong horse battery")
	}
	var ratios []float64
	var lo time.Duration
	for run := 1; run <= runs; run++ {
		durations := make([][]time.Duration, len(kinds))
		for i := range rounds {
			for j := range kinds {
				k := (i + j) % len(kinds)
				durations[k] = append(durations[k], attempt(kinds[k].username, "wrong horse battery"))
			}
		}
		medians := make([]time.Duration, len(kinds))
		for k := range kinds {
			slices.Sort(durations[k])
			medians[k] = durations[k][rounds/2]
			t.Logf("run %d: %s: median %s (min %s, max %s)", run, kinds[k].name, medians[k], durations[k][0], durations[k][rounds-1])
		}
		lo = slices.Min(medians)
		ratio := float64(slices.Max(medians)) / float64(lo)
		ratios = append(ratios, ratio)
		t.Logf("run %d: ratio of medians %.3f (limit %.2f)", run, ratio, maxRatio)
		if ratio <= maxRatio {
			break
		}
	}
	if slices.Min(ratios) > maxRatio {
		t.Errorf("medians differ by more than %.0f%% in every run (ratios %.3f): an unknown user can be told from a wrong password by timing",
			(maxRatio-1)*100, ratios)
	}

	// A password over the login cap is refused before any hashing, so that
	// nobody can make the issuer hash megabytes: it answers far faster than a hash.
	long := make([]time.Duration, 0, 11)
	for range cap(long) {
		long = append(long, attempt("alice", strings.Repeat("p", 4*password.MaxLength+1)))
	}
	slices.Sort(long)
	t.Logf("over-long password: median %s", long[len(long)/2])
	if long[len(long)/2] > lo/2 {
		t.Errorf("an over-long password takes %s, a hash %s: it was hashed", long[len(long)/2], lo)
	}
}

// memDir is a temporary directory in memory when the system has one: each
// failed login writes an audit event durably, and a disk shared with other
// tests' fsyncs adds noise that has nothing to do with the code paths compared.
func memDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "canopy-timing-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
