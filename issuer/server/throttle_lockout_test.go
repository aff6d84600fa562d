package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/throttle"
)

// TestThrottleRemoteLockout: a username is public (it is a subdomain), so
// anyone can fail more than the per-account threshold against it from many
// addresses, spacing each failure just past the wait. The owner must still
// get in: at once from a browser that signed in to the account before (its
// device cookie), and after a few seconds from any other browser.
func TestThrottleRemoteLockout(t *testing.T) {
	m := metrics.NewIssuer()
	h := newHarness(t, options{trustedProxies: "127.0.0.1/32", metrics: m})
	h.createUser("alice", "correct horse")
	h.createUser("bob", "battery staple")
	laptop := h.from("203.0.113.1") // alice's own browser, signed in before the attack
	laptop.login("alice", "correct horse")
	if laptop.cookies[h.cfg.Cookies().Device] == "" {
		t.Fatalf("no %s cookie after a sign-in", h.cfg.Cookies().Device)
	}
	bobs := h.from("203.0.113.2") // another user's browser: its device cookie is for bob
	bobs.login("bob", "battery staple")

	attack := func(n int) {
		for i := range n {
			addr := fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256+1) // a fresh address each time
			if ok, wait := h.srv.throttle.Allowed("alice", addr); !ok {
				h.clock.Advance(wait) // just past the wait: the patient attacker
			}
			if got := h.from(addr).tryLogin("alice", "guess"); got != http.StatusUnauthorized {
				t.Fatalf("guess %d: status %d", i, got)
			}
		}
	}
	attack(130)

	if got := bobs.tryLogin("alice", "correct horse"); got != http.StatusUnauthorized {
		t.Errorf("right after the attack, a device cookie for another account: status %d, want 401", got)
	}
	forged := h.from("203.0.113.4") // bob's device cookie, rewritten to name alice
	forged.cookies[h.cfg.Cookies().Device] = strings.Replace(bobs.cookies[h.cfg.Cookies().Device], "bob", "alice", 1)
	if got := forged.tryLogin("alice", "correct horse"); got != http.StatusUnauthorized {
		t.Errorf("right after the attack, an altered device cookie: status %d, want 401", got)
	}
	if got := laptop.tryLogin("alice", "correct horse"); got != http.StatusSeeOther {
		t.Errorf("right after the attack, the owner's browser with its device cookie: status %d, want 303", got)
	}
	laptop.header.Set("X-Forwarded-For", "198.51.100.99") // the same laptop, on another network
	if got := laptop.tryLogin("alice", "correct horse"); got != http.StatusSeeOther {
		t.Errorf("the owner's browser from another address: status %d, want 303", got)
	}

	attack(5)
	phone := h.from("203.0.113.3") // the owner on a new device: no device cookie
	if got := phone.tryLogin("alice", "correct horse"); got != http.StatusUnauthorized {
		t.Errorf("right after the attack, a new browser: status %d, want 401 (the capped wait)", got)
	}
	capped := throttle.DefaultConfig().UntrustedAccountMax
	h.clock.Advance(capped)
	if got := phone.tryLogin("alice", "correct horse"); got != http.StatusSeeOther {
		t.Errorf("%s after the attack, a new browser: status %d, want 303", capped, got)
	}
	if got := counter(t, m, "canopy_issuer_throttle_account_capped_total", ""); got == 0 {
		t.Error("canopy_issuer_throttle_account_capped_total did not count the capped waits")
	}
}
