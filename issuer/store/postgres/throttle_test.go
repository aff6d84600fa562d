package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/throttle"
)

// countingShared passes calls to the store and counts them.
type countingShared struct {
	throttle.Shared
	calls atomic.Int64
}

func (c *countingShared) ThrottleCounts(ctx context.Context, keys []string, now time.Time) ([]throttle.Count, error) {
	c.calls.Add(1)
	return c.Shared.ThrottleCounts(ctx, keys, now)
}

func (c *countingShared) ThrottleFailure(ctx context.Context, key string, now time.Time, window time.Duration) (throttle.Count, error) {
	c.calls.Add(1)
	return c.Shared.ThrottleFailure(ctx, key, now, window)
}

// TestThrottleAcrossInstances: two issuer instances, each with its own
// pool and its own in-memory throttle, on one PostgreSQL database. Wrong
// passwords for one account from one address, alternating between them,
// meet the per-(account, address) limit of 5 free tries for the whole
// deployment: after 6 failures (3 on each) both refuse the next attempt
// for the backoff's second.
// With memory alone each would still admit it. An attempt memory already
// refuses never reaches the database.
func TestThrottleAcrossInstances(t *testing.T) {
	a, dsn := openTemp(t)
	b := openDSN(t, dsn)
	now := base
	clock := func() time.Time { return now }
	limiter := func(s throttle.Shared) (*throttle.Limiter, *countingShared) {
		cfg := throttle.DefaultConfig()
		cfg.Now = clock
		cfg.OnSharedError = func(err error) { t.Errorf("shared throttle: %v", err) }
		if s == nil {
			return throttle.New(cfg), nil
		}
		cs := &countingShared{Shared: s}
		cfg.Shared = cs
		return throttle.New(cfg), cs
	}
	la, ca := limiter(a)
	lb, cb := limiter(b)
	memA, _ := limiter(nil)
	memB, _ := limiter(nil)
	for i := range 6 {
		for _, pair := range [][2]*throttle.Limiter{{la, lb}, {memA, memB}} {
			l := pair[i%2]
			at, wait := l.Begin("alice", "203.0.113.7")
			if at == nil {
				t.Fatalf("failure %d: refused (wait %v) within the free tries", i+1, wait)
			}
			at.Failure()
		}
		now = now.Add(10 * time.Millisecond)
	}
	for name, l := range map[string]*throttle.Limiter{"instance a": la, "instance b": lb} {
		if at, wait := l.Begin("alice", "203.0.113.7"); at != nil || wait <= 0 {
			t.Errorf("%s after 6 failures across both: admitted (wait %v), want refused", name, wait)
		}
	}
	if at, _ := memA.Begin("alice", "203.0.113.7"); at == nil {
		t.Fatal("control: memory alone, 3 failures per instance, refused: the test proves nothing")
	}
	// Refused from memory now: no further call to the database.
	before := ca.calls.Load() + cb.calls.Load()
	for range 5 {
		la.Begin("alice", "203.0.113.7")
		lb.Begin("alice", "203.0.113.7")
	}
	if after := ca.calls.Load() + cb.calls.Load(); after != before {
		t.Errorf("throttled attempts made %d calls to the database, want 0", after-before)
	}
	// Another address is not slowed by alice's pair count (only 6 of the
	// account's 100 free failures are used).
	if at, _ := lb.Begin("alice", "198.51.100.1"); at == nil {
		t.Error("another address refused")
	} else {
		at.Success() // and a success there forgets that pair only
	}
	// Once the backoff has passed, a success through one instance clears
	// the pair's count for both.
	now = now.Add(15 * time.Minute)
	at, _ := la.Begin("alice", "203.0.113.7")
	if at == nil {
		t.Fatal("refused after the backoff")
	}
	at.Success()
	counts, err := a.ThrottleCounts(t.Context(), []string{"unused"}, now)
	if err != nil || len(counts) != 1 || counts[0].Failures != 0 {
		t.Fatalf("ThrottleCounts of an unknown key: %v, %v", counts, err)
	}
}

// TestThrottleFailureConcurrent: failures added at once through two pools
// each count once.
func TestThrottleFailureConcurrent(t *testing.T) {
	a, dsn := openTemp(t)
	b := openDSN(t, dsn)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if _, err := s.ThrottleFailure(context.Background(), "k", base, time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := a.ThrottleCounts(t.Context(), []string{"k"}, base)
	if err != nil || got[0].Failures != n {
		t.Fatalf("count after %d concurrent failures: %v, %v", n, got, err)
	}
	// A count whose window ended starts again at 1, and is not read.
	if got, err := a.ThrottleCounts(t.Context(), []string{"k"}, base.Add(2*time.Hour)); err != nil || got[0].Failures != 0 {
		t.Fatalf("expired count read back: %v, %v", got, err)
	}
	c, err := b.ThrottleFailure(t.Context(), "k", base.Add(2*time.Hour), time.Hour)
	if err != nil || c.Failures != 1 {
		t.Fatalf("failure after the window: %+v, %v", c, err)
	}
	if n, err := a.SweepThrottle(t.Context(), base.Add(4*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("SweepThrottle: %d, %v", n, err)
	}
}
