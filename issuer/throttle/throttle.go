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
}

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

// Allowed reports whether a login attempt for account from addr may proceed now,
// and if not, how long until it may.
func (l *Limiter) Allowed(account, addr string) (bool, time.Duration) {
	if l.disabled {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	var wait time.Duration
	for _, c := range l.checks(account, addr) {
		if e := c.t.m[c.key]; e != nil && now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait == 0, wait
}

// Failure records a failed attempt.
func (l *Limiter) Failure(account, addr string) {
	if l.disabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	for _, c := range l.checks(account, addr) {
		c.t.fail(c.key, now, l.cfg.MaxEntries)
	}
}

// Success forgets the pair's failures; the address and account counts decay by themselves.
func (l *Limiter) Success(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pair.m, account+"\x00"+addr)
}

type check struct {
	t   *table
	key string
}

func (l *Limiter) checks(account, addr string) [3]check {
	return [3]check{{&l.pair, account + "\x00" + addr}, {&l.addr, addr}, {&l.account, account}}
}

func (t *table) fail(key string, now time.Time, maxEntries int) {
	e := t.m[key]
	if e == nil || now.Sub(e.last) > t.rule.Window {
		if e == nil && len(t.m) >= maxEntries {
			t.evict(now)
		}
		e = &entry{}
		t.m[key] = e
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
