// Package throttle slows down password guessing with exponential backoff per
// (account, client address) pair, per client address, and per account at a much
// higher threshold, so that nobody can lock a user out from afar and no lock is
// permanent.
//
// The per-account rule is the only one a guessing campaign spread over many
// addresses meets, and the only one that could keep the account's owner out.
// So it is split the way OWASP's device cookies split it: a browser that
// proves an earlier sign-in of the account (the caller verifies its device
// cookie and passes its id) is counted on its own, and never slowed by
// strangers' failures; every other browser shares the account's count,
// whose wait is capped at a few seconds (UntrustedAccountMax), so the owner
// on a new device waits little.
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
	// UntrustedAccountMax caps the per-account wait of attempts made without
	// a device id; 0 means the Account rule's Max.
	UntrustedAccountMax time.Duration
	MaxEntries          int // memory bound per dimension; the oldest entries go first
	Now                 func() time.Time
	// Shared, when set, pools the counts of several instances (shared.go):
	// an attempt memory admits is checked against the deployment's counts
	// (one read) and a failure is added to them (a write per count); an
	// attempt memory already refuses is answered without the store.
	Shared Shared
	// OnSharedError, when set, hears of every failed call to Shared (the
	// in-memory counts then decide alone).
	OnSharedError func(error)
}

// DefaultConfig: 5 free tries per (account, address), 20 per address, 100 per
// account; past those, browsers without the account's device cookie wait at
// most 5 seconds on the account's count.
func DefaultConfig() Config {
	return Config{
		Pair:                Rule{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour},
		Addr:                Rule{Free: 20, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour},
		Account:             Rule{Free: 100, Base: time.Second, Max: 5 * time.Minute, Window: time.Hour},
		UntrustedAccountMax: 5 * time.Second,
		MaxEntries:          100_000,
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
	name string // the dimension, in shared keys
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
		pair:    table{name: "pair", rule: cfg.Pair, m: map[string]*entry{}},
		addr:    table{name: "addr", rule: cfg.Addr, m: map[string]*entry{}},
		account: table{name: "account", rule: cfg.Account, m: map[string]*entry{}},
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
	return l.admissible(account, addr, "", l.cfg.Now())
}

// Begin admits an attempt for account from addr when Allowed would, and holds
// a slot for it until the Attempt ends: no more attempts run at once than the
// free tries left allow (one at a time once backoff has begun), so a burst of
// simultaneous guesses cannot outrun the count. When the attempt may not run
// now, Begin returns nil and how long to wait.
func (l *Limiter) Begin(account, addr string) (*Attempt, time.Duration) {
	return l.BeginDevice(account, addr, "")
}

// BeginDevice is Begin for a browser that holds device, the id of a device
// cookie the caller verified as issued at an earlier successful sign-in of
// account ("" when it holds none). Such a browser is counted per account on
// its own, with the Account rule in full, so that strangers' failures never
// slow it down; attempts without a device share the account's count, whose
// wait is capped at UntrustedAccountMax.
func (l *Limiter) BeginDevice(account, addr, device string) (*Attempt, time.Duration) {
	a := &Attempt{l: l, account: account, addr: addr, device: device}
	if l.disabled {
		return a, 0
	}
	now := l.cfg.Now()
	if l.cfg.Shared != nil {
		// Memory first: an attempt it refuses costs the store nothing.
		l.mu.Lock()
		ok, wait := l.admissible(account, addr, device, now)
		l.mu.Unlock()
		if !ok {
			return nil, wait
		}
		l.pull(l.checks(account, addr, device), now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok, wait := l.admissible(account, addr, device, now); !ok {
		return nil, wait
	}
	for _, c := range l.checks(account, addr, device) {
		e := c.t.entry(c.key, now, l.cfg.MaxEntries)
		e.pending++
		e.pendingAt = now
	}
	return a, 0
}

// Attempt is an attempt Begin admitted. The first of Failure, Success and
// Release ends it and frees its slot; the others then do nothing, so a
// handler defers Release and reports an outcome on the paths that have one.
// An Attempt belongs to one request: it is not for concurrent use.
type Attempt struct {
	l                     *Limiter
	account, addr, device string
	ended                 bool
}

func (a *Attempt) end() bool {
	if a == nil || a.ended {
		return false
	}
	a.ended = true
	return true
}

// Failure records the attempt as failed. It reports whether the failure
// made the account's shared count wait longer than UntrustedAccountMax
// allows, so the wait was capped: a sign of guessing against the account from
// many addresses, for the caller to log and count.
func (a *Attempt) Failure() (capped bool) {
	if a.end() {
		return a.l.failure(a.account, a.addr, a.device)
	}
	return false
}

// Success records the attempt as successful.
func (a *Attempt) Success() {
	if a.end() {
		a.l.success(a.account, a.addr, a.device)
	}
}

// Release ends an attempt without an outcome (the request failed for
// another reason, such as a store error): its slot is freed and nothing
// is counted.
func (a *Attempt) Release() {
	if a.end() {
		a.l.release(a.account, a.addr, a.device)
	}
}

func (l *Limiter) admissible(account, addr, device string, now time.Time) (bool, time.Duration) {
	var wait time.Duration
	busy := false
	for _, c := range l.checks(account, addr, device) {
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
	l.failure(account, addr, "")
}

func (l *Limiter) failure(account, addr, device string) (capped bool) {
	if l.disabled {
		return false
	}
	l.mu.Lock()
	now := l.cfg.Now()
	cs := l.checks(account, addr, device)
	for _, c := range cs {
		c.t.release(c.key)
		if c.t.fail(c.key, now, l.cfg.MaxEntries, c.max) {
			capped = true
		}
	}
	l.mu.Unlock()
	if l.cfg.Shared != nil && l.push(cs, now) {
		capped = true
	}
	return capped
}

func (l *Limiter) release(account, addr, device string) {
	if l.disabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.checks(account, addr, device) {
		c.t.release(c.key)
	}
}

// Success forgets the pair's failures and releases one slot Begin gave, if
// any; the address and account counts decay by themselves.
func (l *Limiter) Success(account, addr string) {
	l.success(account, addr, "")
}

// success also forgets the device's own failures: its owner is back in.
func (l *Limiter) success(account, addr, device string) {
	l.mu.Lock()
	cs := l.checks(account, addr, device)
	for _, c := range cs {
		c.t.release(c.key)
	}
	delete(l.pair.m, cs[0].key)
	if device != "" {
		delete(l.account.m, cs[2].key)
	}
	l.mu.Unlock()
	if l.cfg.Shared != nil {
		keys := l.sharedKeys(cs)
		forget := []string{keys[0]}
		if device != "" {
			forget = append(forget, keys[2])
		}
		l.forget(forget)
	}
}

type check struct {
	t   *table
	key string
	max time.Duration // caps the wait below the rule's Max; 0: no cap
}

// checks are the three counts an attempt meets. The per-account one is the
// account's shared count for an attempt without a device, or the device's
// own count under the account (in the same table, with the same rule) for
// one with a device.
func (l *Limiter) checks(account, addr, device string) [3]check {
	acct := check{t: &l.account, key: account, max: l.cfg.UntrustedAccountMax}
	if device != "" {
		acct = check{t: &l.account, key: account + "\x00device\x00" + device}
	}
	return [3]check{{t: &l.pair, key: account + "\x00" + addr}, {t: &l.addr, key: addr}, acct}
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

// fail records a failure; capped reports that the wait it set was cut to limit.
func (t *table) fail(key string, now time.Time, maxEntries int, limit time.Duration) (capped bool) {
	e := t.entry(key, now, maxEntries)
	if e.failures > 0 && now.Sub(e.last) > t.rule.Window {
		// Old failures are forgotten; attempts in flight still count.
		*e = entry{pending: e.pending, pendingAt: e.pendingAt}
	}
	e.failures++
	e.last = now
	wait, capped := t.rule.wait(e.failures, limit)
	if wait > 0 {
		e.until = now.Add(wait)
	}
	return capped
}

// wait is how long an entry with failures waits after its last one: zero
// within the free tries, then Base doubling up to Max, cut to limit (> 0)
// with capped set.
func (r Rule) wait(failures int, limit time.Duration) (wait time.Duration, capped bool) {
	over := failures - r.Free
	if over <= 0 {
		return 0, false
	}
	wait = r.Base
	for i := 1; i < over && wait < r.Max; i++ {
		wait *= 2
	}
	wait = min(wait, r.Max)
	if limit > 0 && wait > limit {
		wait, capped = limit, true
	}
	return wait, capped
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
