package throttle

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest() (*Limiter, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.Now = c.now
	return New(cfg), c
}

func TestPairBackoff(t *testing.T) {
	l, c := newTest()
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allowed("alice", "1.2.3.4"); !ok {
			t.Fatalf("attempt %d throttled within the free tries", i)
		}
		l.Failure("alice", "1.2.3.4")
	}
	// 5 free failures used: the next failure starts the backoff.
	l.Failure("alice", "1.2.3.4")
	ok, wait := l.Allowed("alice", "1.2.3.4")
	if ok || wait != time.Second {
		t.Fatalf("after 6 failures: ok=%v wait=%s, want throttled for 1s", ok, wait)
	}
	l.Failure("alice", "1.2.3.4")
	if _, wait := l.Allowed("alice", "1.2.3.4"); wait != 2*time.Second {
		t.Fatalf("backoff did not double: %s", wait)
	}
	// Another address is not affected by the pair rule.
	if ok, _ := l.Allowed("alice", "5.6.7.8"); !ok {
		t.Fatal("another address was throttled by alice's pair")
	}
	// Never permanent: after the wait it is allowed again.
	c.t = c.t.Add(2 * time.Second)
	if ok, _ := l.Allowed("alice", "1.2.3.4"); !ok {
		t.Fatal("still throttled after the backoff")
	}
}

func TestBackoffCapped(t *testing.T) {
	l, c := newTest()
	for i := 0; i < 60; i++ {
		l.Failure("bob", "9.9.9.9")
	}
	_, wait := l.Allowed("bob", "9.9.9.9")
	if wait > 15*time.Minute || wait < 5*time.Minute {
		t.Fatalf("wait %s, want capped at 15m", wait)
	}
	c.t = c.t.Add(15 * time.Minute)
	if ok, _ := l.Allowed("bob", "9.9.9.9"); !ok {
		t.Fatal("lock outlived its cap")
	}
}

func TestAddressRuleAcrossAccounts(t *testing.T) {
	l, _ := newTest()
	for i := 0; i < 21; i++ {
		l.Failure(string(rune('a'+i%26))+"user", "6.6.6.6")
	}
	if ok, _ := l.Allowed("fresh", "6.6.6.6"); ok {
		t.Fatal("one address spraying many accounts was not throttled")
	}
	if ok, _ := l.Allowed("fresh", "7.7.7.7"); !ok {
		t.Fatal("an innocent address was throttled")
	}
}

func TestAccountRuleNeedsManyAddresses(t *testing.T) {
	l, _ := newTest()
	// 30 attackers with 3 tries each: under every pair and address threshold,
	// and far under the account threshold: the owner is not locked out.
	for a := 0; a < 30; a++ {
		for i := 0; i < 3; i++ {
			l.Failure("carol", "10.0.0."+string(rune('0'+a%10))+string(rune('0'+a/10)))
		}
	}
	if ok, _ := l.Allowed("carol", "192.0.2.1"); !ok {
		t.Fatal("90 distributed failures locked the account owner out")
	}
	for a := 0; a < 20; a++ {
		l.Failure("carol", "203.0.113.1")
	}
	if ok, _ := l.Allowed("carol", "192.0.2.1"); ok {
		t.Fatal("over 100 failures did not slow down the account")
	}
}

func TestSuccessClearsPair(t *testing.T) {
	l, _ := newTest()
	for i := 0; i < 6; i++ {
		l.Failure("dave", "1.1.1.1")
	}
	l.Success("dave", "1.1.1.1")
	if ok, _ := l.Allowed("dave", "1.1.1.1"); !ok {
		t.Fatal("success did not clear the pair")
	}
}

func TestBoundedMemory(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	cfg := DefaultConfig()
	cfg.Now = c.now
	cfg.MaxEntries = 10
	l := New(cfg)
	for i := 0; i < 100; i++ {
		l.Failure("u"+string(rune('a'+i%26))+string(rune('a'+i/26)), "1.1.1.1")
		c.t = c.t.Add(time.Millisecond)
	}
	if n := len(l.pair.m); n > 10 {
		t.Fatalf("pair table holds %d entries, bound is 10", n)
	}
}

// TestBurstCannotOutrunTheCount: simultaneous guesses are admitted only as
// far as the free tries go; the rest wait for the outcomes.
func TestBurstCannotOutrunTheCount(t *testing.T) {
	l, c := newTest()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if a, _ := l.Begin("gina", "4.4.4.4"); a != nil {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 6 {
		t.Fatalf("%d of 300 simultaneous attempts admitted, want 6 (5 free + 1)", n)
	}
	for range 6 {
		l.Failure("gina", "4.4.4.4")
	}
	if a, _ := l.Begin("gina", "4.4.4.4"); a != nil {
		t.Fatal("admitted right after the burst's six failures")
	}
	// Once backoff has begun, one attempt at a time.
	c.t = c.t.Add(time.Second)
	if a, _ := l.Begin("gina", "4.4.4.4"); a == nil {
		t.Fatal("not admitted after the backoff")
	}
	if a, _ := l.Begin("gina", "4.4.4.4"); a != nil {
		t.Fatal("a second attempt ran alongside the first during backoff")
	}
	// An attempt that never reports back frees its slot after a while.
	c.t = c.t.Add(pendingTTL + time.Second)
	if a, _ := l.Begin("gina", "4.4.4.4"); a == nil {
		t.Fatal("a lost attempt held its slot forever")
	}
}

// TestSuccessReleasesSlots: sequential successful logins never throttle.
func TestSuccessReleasesSlots(t *testing.T) {
	l, _ := newTest()
	for i := range 50 {
		a, _ := l.Begin("hank", "5.5.5.5")
		if a == nil {
			t.Fatalf("successful login %d was throttled", i)
		}
		a.Success()
	}
}

// TestReleaseFreesSlot: an attempt that ends without an outcome frees its
// slot at once and counts for nothing; an attempt ends only once.
func TestReleaseFreesSlot(t *testing.T) {
	l, _ := newTest()
	for i := range 50 {
		a, _ := l.Begin("ivy", "6.6.6.6")
		if a == nil {
			t.Fatalf("attempt %d refused after %d released ones", i, i)
		}
		a.Release()
		a.Failure() // ended already: not counted
	}
	if e := l.pair.m["ivy\x006.6.6.6"]; e.failures != 0 || e.pending != 0 {
		t.Fatalf("after released attempts: %d failures, %d pending, want none", e.failures, e.pending)
	}
	// A deferred Release after an outcome frees nothing more.
	held, _ := l.Begin("ivy", "6.6.6.6")
	a, _ := l.Begin("ivy", "6.6.6.6")
	a.Failure()
	a.Release()
	if e := l.pair.m["ivy\x006.6.6.6"]; e.failures != 1 || e.pending != 1 {
		t.Fatalf("%d failures, %d pending, want 1 and the held attempt's 1", e.failures, e.pending)
	}
	held.Release()
	var refused *Attempt
	refused.Release() // what Begin returns when it refuses: safe to end
}

// TestAccountDevice: strangers' failures against one account from many
// addresses make browsers without a device wait at most UntrustedAccountMax,
// and never slow a browser with a device; a device's own failures are counted
// on their own, with the Account rule in full.
func TestAccountDevice(t *testing.T) {
	l, c := newTest()
	addr := func(i int) string { return fmt.Sprintf("10.0.%d.%d", i/250, i%250) }
	capped := 0
	for i := range 110 {
		a, wait := l.Begin("alice", addr(i))
		if a == nil {
			c.t = c.t.Add(wait)
			if a, _ = l.Begin("alice", addr(i)); a == nil {
				t.Fatalf("attempt %d still throttled after its wait", i)
			}
		}
		if a.Failure() {
			capped++
		}
	}
	if ok, wait := l.Allowed("alice", "192.0.2.1"); ok || wait != 5*time.Second {
		t.Fatalf("after 110 failures from many addresses: ok=%v wait=%s, want the capped 5s", ok, wait)
	}
	if capped == 0 || capped > 10 {
		t.Fatalf("%d failures reported capped, want those past the cap (1..10)", capped)
	}
	a, wait := l.BeginDevice("alice", "192.0.2.1", "dev1")
	if a == nil {
		t.Fatalf("a browser with a device is throttled by strangers' failures (wait %s)", wait)
	}
	a.Success()
	for i := range 106 { // the device's own failures, from many addresses
		if a, wait = l.BeginDevice("alice", addr(i), "dev1"); a == nil {
			c.t = c.t.Add(wait)
			a, _ = l.BeginDevice("alice", addr(i), "dev1")
		}
		if a.Failure() {
			t.Fatal("a device's own failure reported capped")
		}
		c.t = c.t.Add(6 * time.Second) // past the strangers' cap, not past the device's backoff
	}
	if a, wait = l.BeginDevice("alice", "192.0.2.200", "dev1"); a != nil || wait < 10*time.Second {
		t.Fatalf("after 106 failures of its own the device waits %s, want the Account rule's backoff", wait)
	}
	if a, _ = l.BeginDevice("alice", "192.0.2.200", "dev2"); a == nil {
		t.Fatal("another device is slowed by the first device's failures")
	}
}
