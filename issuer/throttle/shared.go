package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Count is one key's failures as several instances share them.
type Count struct {
	Failures int
	Last     time.Time // the latest failure
}

// Shared is where several issuer instances pool their failure counts, so
// that N instances do not allow N times the guesses: the store, when it is
// PostgreSQL. Keys are opaque (SharedKey).
type Shared interface {
	// ThrottleCounts returns the counts of keys, in order; a zero Count
	// for a key without one. It writes nothing.
	ThrottleCounts(ctx context.Context, keys []string, now time.Time) ([]Count, error)
	// ThrottleFailure adds a failure to key's count (a count older than
	// window starts again) and returns the count after it.
	ThrottleFailure(ctx context.Context, key string, now time.Time, window time.Duration) (Count, error)
	// ThrottleForget deletes the counts of keys.
	ThrottleForget(ctx context.Context, keys []string) error
}

// sharedTimeout bounds each call to Shared: a slow store must not hold a
// sign-in. On an error or a timeout the in-memory counts alone decide,
// which still limit each instance.
const sharedTimeout = 2 * time.Second

// sharedKey names a count in the store: a hash of the dimension and the
// key, so the table holds no username, address or device id, and every
// key is one short string whatever bytes the username had.
func sharedKey(dim, key string) string {
	sum := sha256.Sum256([]byte("canopy throttle\x00" + dim + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// sharedKeys are the store keys of an attempt's checks.
func (l *Limiter) sharedKeys(cs [3]check) []string {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = sharedKey(c.t.name, c.key)
	}
	return keys
}

// pull merges the deployment's counts for cs into memory: a count higher
// than this instance's own (failures elsewhere) raises it, with the wait
// it calls for. Called without l.mu.
func (l *Limiter) pull(cs [3]check, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	counts, err := l.cfg.Shared.ThrottleCounts(ctx, l.sharedKeys(cs), now)
	if err != nil {
		l.sharedError(err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, c := range cs {
		l.merge(c, counts[i], now)
	}
}

// push adds a failure to the deployment's counts and merges the result.
// Called without l.mu.
func (l *Limiter) push(cs [3]check, now time.Time) (capped bool) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	keys := l.sharedKeys(cs)
	for i, c := range cs {
		got, err := l.cfg.Shared.ThrottleFailure(ctx, keys[i], now, c.t.rule.Window)
		if err != nil {
			l.sharedError(err)
			return capped
		}
		l.mu.Lock()
		if l.merge(c, got, now) {
			capped = true
		}
		l.mu.Unlock()
	}
	return capped
}

// forget deletes the counts a success clears, from the store.
func (l *Limiter) forget(keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := l.cfg.Shared.ThrottleForget(ctx, keys); err != nil {
		l.sharedError(err)
	}
}

func (l *Limiter) sharedError(err error) {
	if l.cfg.OnSharedError != nil {
		l.cfg.OnSharedError(err)
	}
}

// merge raises c's entry to a shared count above its own; it reports
// whether the wait that count calls for was capped. l.mu is held.
func (l *Limiter) merge(c check, sc Count, now time.Time) (capped bool) {
	if sc.Failures == 0 {
		return false
	}
	e := c.t.entry(c.key, now, l.cfg.MaxEntries)
	if sc.Failures <= e.failures && !sc.Last.After(e.last) {
		return false
	}
	if sc.Failures > e.failures {
		e.failures = sc.Failures
	}
	e.last = maxTime(e.last, sc.Last)
	wait, capped := c.t.rule.wait(e.failures, c.max)
	if wait > 0 {
		e.until = maxTime(e.until, e.last.Add(wait))
	}
	return capped
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
