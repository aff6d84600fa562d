// Package throttle slows down password guessing with exponential backoff per
// (account, client address) pair, per client address, and per account at a much
// higher threshold, so that nobody can lock a user out from afar and no lock is
// permanent.
package throttle

import (
	"sync"
	"time"
)

// Rule is one throttling dimension: after Free failures within Window, each
// further failure doubles a wait starting at Base, capped at Max.
type Rule struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Window time.Duration // failures older than this are forgotten
}

// Config is the three rules. The per-account rule has a high Free count: it
// only slows down a distributed guessing campaign against one account.
type Config struct {
	Pair, Addr, Account Rule
	MaxEntries          int // memory bound per dimension; the oldest entries go first
	Now                 func() time.Time
}

// DefaultConfig: 5 free tries per (account, address), 20 per address, 100 per account.
func DefaultConfig() Config {
	return Config{
		Pair:       Rule{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour},
		Addr:       Rule{Free: 20, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour},
		Account:    Rule{Free: 100, Base: time.Second, Max: 5 * time.Minute, Window: time.Hour},
		MaxEntries: 100_000,
	}
}

type entry struct {
	failures int
	last     time.Time
	until    time.Time
	// pending counts attempts admitted by Begin and not yet ended: without it, a burst of simultaneous guesses would
	// all pass the check before the first failure is recorded.
	pending   int
	pendingAt time.Time
}

// pendingTTL forgets admitted attempts that never ended (a caller that lost
// its Attempt): longer than any login takes, including its wait for a
// hashing slot.
const pendingTTL = 30 * time.Second

type table struct {
	rule Rule
	m    map[string]*entry
}

// Limiter tracks failures. It is safe for concurrent use.
type Limiter struct {
	mu       sync.Mutex
	cfg      Config
	pair     table
	addr     table
	account  table
	disabled bool
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	return &Limiter{
		cfg:     cfg,
		pair:    table{rule: cfg.Pair, m: map[string]*entry{}},
		addr:    table{rule: cfg.Addr, m: map[string]*entry{}},
		account: table{rule: cfg.Account, m: map[string]*entry{}},
	}
}

// InsecureDisabled returns a Limiter that never throttles (for timing tests only).
func InsecureDisabled() *Limiter {
	l := New(DefaultConfig())
	l.disabled = true
	return l
}

// Allowed reports whether an attempt for account from addr would be admitted
// now, and if not, how long to wait. It changes nothing; Begin admits one.
func (l *Limiter) Allowed(account, addr string) (bool, time.Duration) {
	if l.disabled {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.admissible(account, addr, l.cfg.Now())
}

// Begin admits an attempt for account from addr when Allowed would, and holds
// a slot for it until the Attempt ends: no more attempts run at once than the
// free tries left allow (one at a time once backoff has begun), so a burst of
// simultaneous guesses cannot outrun the count. When the attempt may not run
// now, Begin returns nil and how long to wait.
func (l *Limiter) Begin(account, addr string) (*Attempt, time.Duration) {
	if l.disabled {
		return &Attempt{l: l, account: account, addr: addr}, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if ok, wait := l.admissible(account, addr, now); !ok {
		return nil, wait
	}
	for _, c := range l.checks(account, addr) {
		e := c.t.entry(c.key, now, l.cfg.MaxEntries)
		e.pending++
		e.pendingAt = now
	}
	return &Attempt{l: l, account: account, addr: addr}, 0
}

// Attempt is an attempt Begin admitted. The first of Failure, Success and
// Release ends it and frees its slot; the others then do nothing, so a
// handler defers Release and reports an outcome on the paths that have one.
// An Attempt belongs to one request: it is not for concurrent use.
type Attempt struct {
	l             *Limiter
	account, addr string
	ended         bool
}

func (a *Attempt) end() bool {
	if a == nil || a.ended {
		return false
	}
	a.ended = true
	return true
}

// Failure records the attempt as failed.
func (a *Attempt) Failure() {
	if a.end() {
		a.l.Failure(a.account, a.addr)
	}
}

// Success records the attempt as successful.
func (a *Attempt) Success() {
	if a.end() {
		a.l.Success(a.account, a.addr)
	}
}

// Release ends an attempt without an outcome (the request failed for
// another reason, such as a store error): its slot is freed and nothing
// is counted.
func (a *Attempt) Release() {
	if a.end() {
		a.l.release(a.account, a.addr)
	}
}

func (l *Limiter) admissible(account, addr string, now time.Time) (bool, time.Duration) {
	var wait time.Duration
	busy := false
	for _, c := range l.checks(account, addr) {
		e := c.t.m[c.key]
		if e == nil {
			continue
		}
		if now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
		if e.pending > 0 && now.Sub(e.pendingAt) > pendingTTL {
			e.pending = 0
		}
		slots := 1
		if e.failures < c.t.rule.Free {
			slots = c.t.rule.Free - e.failures + 1
		}
		if e.pending >= slots {
			busy = true
		}
	}
	switch {
	case wait > 0:
		return false, wait
	case busy:
		return false, time.Second
	}
	return true, 0
}

// Failure records a failed attempt (and releases one slot Begin gave, if
// any); Attempt.Failure reports the outcome of an attempt Begin admitted.
func (l *Limiter) Failure(account, addr string) {
	if l.disabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	for _, c := range l.checks(account, addr) {
		c.t.release(c.key)
		c.t.fail(c.key, now, l.cfg.MaxEntries)
	}
}

func (l *Limiter) release(account, addr string) {
	if l.disabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.checks(account, addr) {
		c.t.release(c.key)
	}
}

// Success forgets the pair's failures and releases one slot Begin gave, if
// any; the address and account counts decay by themselves.
func (l *Limiter) Success(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.checks(account, addr) {
		c.t.release(c.key)
	}
	delete(l.pair.m, account+"\x00"+addr)
}

type check struct {
	t   *table
	key string
}

func (l *Limiter) checks(account, addr string) [3]check {
	return [3]check{{&l.pair, account + "\x00" + addr}, {&l.addr, addr}, {&l.account, account}}
}

// entry returns key's entry, creating it (within the memory bound) when missing.
func (t *table) entry(key string, now time.Time, maxEntries int) *entry {
	e := t.m[key]
	if e == nil {
		if len(t.m) >= maxEntries {
			t.evict(now)
		}
		e = &entry{last: now}
		t.m[key] = e
	}
	return e
}

func (t *table) release(key string) {
	if e := t.m[key]; e != nil && e.pending > 0 {
		e.pending--
	}
}

func (t *table) fail(key string, now time.Time, maxEntries int) {
	e := t.entry(key, now, maxEntries)
	if e.failures > 0 && now.Sub(e.last) > t.rule.Window {
		// Old failures are forgotten; attempts in flight still count.
		*e = entry{pending: e.pending, pendingAt: e.pendingAt}
	}
	e.failures++
	e.last = now
	if over := e.failures - t.rule.Free; over > 0 {
		wait := t.rule.Base
		for i := 1; i < over && wait < t.rule.Max; i++ {
			wait *= 2
		}
		e.until = now.Add(min(wait, t.rule.Max))
	}
}

// evict drops expired entries, or, if none, the least recently failed one.
func (t *table) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range t.m {
		if now.Sub(e.last) > t.rule.Window && now.After(e.until) {
			delete(t.m, k)
			continue
		}
		if oldestKey == "" || e.last.Before(oldest) {
			oldestKey, oldest = k, e.last
		}
	}
	if len(t.m) > 0 && oldestKey != "" {
		delete(t.m, oldestKey)
	}
}
