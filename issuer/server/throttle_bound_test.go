package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/canopy-sso/canopy/issuer/metrics"
)

// counter is the value of the named counter with the given label value, 0 when absent.
func counter(t *testing.T, m *metrics.Issuer, name, label string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetValue() == label {
					return mt.GetCounter().GetValue()
				}
			}
			if label == "" {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// eventCount is how many audit events the store holds (up to 10000).
func (h *harness) eventCount() int {
	h.t.Helper()
	list, err := h.store.Events(context.Background(), "", 10_000)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(list)
}

// TestThrottledAttemptsWriteNothing: a throttled attempt costs no hash and
// needs no account, so it must cost no database write either: it is counted
// in a metric, and the audit trail does not grow with it.
func TestThrottledAttemptsWriteNothing(t *testing.T) {
	m := metrics.NewIssuer()
	h := newHarness(t, options{metrics: m})
	h.createUser("alice", "correct horse")
	b := h.browser()
	for range 6 { // past the pair's free tries: the next attempt is throttled
		b.tryLogin("alice", "wrong horse")
	}
	before := h.eventCount()
	const n = 200
	for range n {
		if got := b.tryLogin("alice", "wrong horse"); got != http.StatusUnauthorized {
			t.Fatalf("throttled attempt: status %d, want 401", got)
		}
	}
	if added := h.eventCount() - before; added != 0 {
		t.Errorf("%d throttled attempts added %d audit events, want 0", n, added)
	}
	if got := counter(t, m, "canopy_issuer_logins_total", metrics.LoginThrottled); got != n {
		t.Errorf("canopy_issuer_logins_total{outcome=throttled} = %v, want %d", got, n)
	}
}
