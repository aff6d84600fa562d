package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

// from is a browser whose requests name addr as the client in X-Forwarded-For.
func (h *harness) from(addr string) *browser {
	b := h.browser()
	if addr != "" {
		b.header.Set("X-Forwarded-For", addr)
	}
	return b
}

// tryLogin posts the login form and returns the status.
func (b *browser) tryLogin(name, pw string) int {
	b.h.t.Helper()
	r := b.post("/login", url.Values{"username": {name}, "password": {pw}, "csrf_token": {b.token()}})
	if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusUnauthorized {
		b.h.t.Fatalf("login %s: status %d; body:\n%s", name, r.StatusCode, r.body)
	}
	return r.StatusCode
}

// fail makes n failed attempts for name, waiting out each backoff so that
// every one of them counts.
func (b *browser) fail(name string, n int) {
	b.h.t.Helper()
	for range n {
		if got := b.tryLogin(name, "wrong horse"); got != http.StatusUnauthorized {
			b.h.t.Fatalf("wrong password for %s: status %d", name, got)
		}
		b.h.clock.Advance(16 * time.Minute) // longer than any backoff, shorter than the window
	}
}

// TestThrottlePair: the (account, address) pair backs off after its free
// tries; another address can still sign in as that user; the backoff ends.
func TestThrottlePair(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		wait     time.Duration
		attacker int // status for the right password from the attacker's address after wait
	}{
		{"within the free tries", 5, 0, http.StatusSeeOther},
		{"first backoff", 6, 0, http.StatusUnauthorized},
		{"first backoff, nearly over", 6, 999 * time.Millisecond, http.StatusUnauthorized},
		{"first backoff over", 6, time.Second, http.StatusSeeOther},
		{"second backoff is twice as long", 7, 1999 * time.Millisecond, http.StatusUnauthorized},
		{"second backoff over", 7, 2 * time.Second, http.StatusSeeOther},
	}
	h := newHarness(t, options{trustedProxies: "127.0.0.1/32"})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("victim%d", i)
			h.createUser(name, "correct horse")
			addr := fmt.Sprintf("198.51.100.%d", i+1)
			attacker := h.from(addr)
			for range tc.failures {
				// Each failure lands once the previous backoff is over, as a patient attacker's would.
				if ok, wait := h.srv.throttle.Allowed(name, addr); !ok {
					h.clock.Advance(wait)
				}
				attacker.tryLogin(name, "wrong horse")
			}
			// Not locked out from afar: the owner's address is unaffected.
			owner := h.from(fmt.Sprintf("203.0.113.%d", i+1))
			if got := owner.tryLogin(name, "correct horse"); got != http.StatusSeeOther {
				t.Errorf("owner from another address: status %d, want 303", got)
			}
			h.clock.Advance(tc.wait)
			if got := attacker.tryLogin(name, "correct horse"); got != tc.attacker {
				t.Errorf("right password from the attacker's address after %s: status %d, want %d", tc.wait, got, tc.attacker)
			}
		})
	}
}

// TestThrottleNeverPermanent: however many failures, the backoff is bounded
// and then the right password works again.
func TestThrottleNeverPermanent(t *testing.T) {
	h := newHarness(t, options{trustedProxies: "127.0.0.1/32"})
	h.createUser("alice", "correct horse")
	b := h.from("198.51.100.1")
	b.fail("alice", 40)
	if got := b.tryLogin("alice", "correct horse"); got != http.StatusSeeOther {
		t.Fatalf("after 40 failures and a 16-minute wait: status %d, want 303", got)
	}
	// Right after a burst the backoff holds, and is bounded by the rule's maximum.
	for range 30 {
		if ok, wait := h.srv.throttle.Allowed("alice", "198.51.100.1"); !ok {
			h.clock.Advance(wait)
		}
		b.tryLogin("alice", "wrong horse")
	}
	if got := b.tryLogin("alice", "correct horse"); got != http.StatusUnauthorized {
		t.Fatalf("right after 30 failures: status %d, want 401", got)
	}
	h.clock.Advance(15*time.Minute + time.Second)
	if got := b.tryLogin("alice", "correct horse"); got != http.StatusSeeOther {
		t.Fatalf("15 minutes after the last failure: status %d, want 303", got)
	}
}

// TestThrottleAddress: one address guessing across many accounts is slowed
// down for every account, but other addresses are not.
func TestThrottleAddress(t *testing.T) {
	h := newHarness(t, options{trustedProxies: "127.0.0.1/32"})
	h.createUser("bob", "correct horse")
	sprayer := h.from("198.51.100.7")
	for i := range 21 { // one failure per account: no pair ever backs off
		sprayer.tryLogin(fmt.Sprintf("user%d", i), "password1")
	}
	if got := sprayer.tryLogin("bob", "correct horse"); got != http.StatusUnauthorized {
		t.Errorf("the spraying address, right password for an untouched account: status %d, want 401", got)
	}
	if got := h.from("203.0.113.7").tryLogin("bob", "correct horse"); got != http.StatusSeeOther {
		t.Errorf("another address: status %d, want 303", got)
	}
	h.clock.Advance(time.Second)
	if got := sprayer.tryLogin("bob", "correct horse"); got != http.StatusSeeOther {
		t.Errorf("the spraying address after the backoff: status %d, want 303", got)
	}
}

// TestThrottleForwardedFor: X-Forwarded-For names the client only when the
// peer is a trusted proxy; otherwise a spoofed header cannot buy fresh tries.
func TestThrottleForwardedFor(t *testing.T) {
	tests := []struct {
		name     string
		trusted  string
		tripXFF  string // the header on the six failures
		retryXFF string // the header on the right password right after
		want     int
	}{
		{"untrusted peer, spoofed address", "", "198.51.100.1", "198.51.100.2", http.StatusUnauthorized},
		{"untrusted peer, spoofed chain", "", "10.0.0.1, 198.51.100.1", "10.0.0.2, 198.51.100.2", http.StatusUnauthorized},
		{"trusted proxy, another client", "127.0.0.1/32", "198.51.100.1", "198.51.100.2", http.StatusSeeOther},
		{"trusted proxy, same client", "127.0.0.1/32", "198.51.100.1", "198.51.100.1", http.StatusUnauthorized},
		// The proxy appends the real client; what the client wrote to the left is its own invention.
		{"trusted proxy, client spoofs the left of the chain", "127.0.0.1/32", "10.0.0.1, 198.51.100.1", "10.0.0.2, 198.51.100.1", http.StatusUnauthorized},
		{"trusted proxy of another network", "192.0.2.0/24", "198.51.100.1", "198.51.100.2", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{trustedProxies: tc.trusted})
			h.createUser("alice", "correct horse")
			trip := h.from(tc.tripXFF)
			for range 6 {
				trip.tryLogin("alice", "wrong horse")
			}
			if got := h.from(tc.retryXFF).tryLogin("alice", "correct horse"); got != tc.want {
				t.Errorf("right password with X-Forwarded-For %q: status %d, want %d", tc.retryXFF, got, tc.want)
			}
		})
	}
}

// failingStore fails, while fail is set, the store calls a sign-in makes
// after the throttle admitted it, the way an unreachable database does.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

var errStoreDown = errors.New("test: store down")

func (f *failingStore) UserByName(ctx context.Context, name string) (store.User, error) {
	if f.fail.Load() {
		return store.User{}, errStoreDown
	}
	return f.Store.UserByName(ctx, name)
}

func (f *failingStore) UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error {
	if f.fail.Load() {
		return errStoreDown
	}
	return f.Store.UseRecoveryCode(ctx, userID, hash, at)
}

// TestThrottleSlotFreedOnError: an attempt that ends in a server error after
// the throttle admitted it gives its slot back at once, so that a run of
// store errors does not turn the next right attempt away.
func TestThrottleSlotFreedOnError(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness, b *browser) // up to the step under test
		try   func(b *browser) *response
	}{
		{
			name:  "password",
			setup: func(*harness, *browser) {},
			try: func(b *browser) *response {
				return b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {b.token()}})
			},
		},
		{
			name: "recovery code",
			setup: func(h *harness, b *browser) {
				u, err := h.store.UserByName(context.Background(), "alice")
				if err != nil {
					t.Fatal(err)
				}
				h.enableTOTP(u, "abcde-fghij")
				b.passwordStep("alice", "correct horse", "")
			},
			try: func(b *browser) *response { return b.code("abcde-fghij") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs *failingStore
			h := newHarness(t, options{wrapStore: func(st store.Store) store.Store {
				fs = &failingStore{Store: st}
				return fs
			}})
			h.createUser("alice", "correct horse")
			b := h.browser()
			tt.setup(h, b)
			fs.fail.Store(true)
			for i := range 12 { // more than the free tries of every rule
				if r := tt.try(b); r.StatusCode != http.StatusInternalServerError {
					t.Fatalf("attempt %d with the store down: status %d, want 500", i, r.StatusCode)
				}
			}
			fs.fail.Store(false)
			if r := tt.try(b); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("right attempt after the store came back: status %d, want 303\n%s", r.StatusCode, r.body)
			}
		})
	}
}
