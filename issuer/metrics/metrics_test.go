package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCounters(t *testing.T) {
	m := NewIssuer()
	m.Login(LoginSuccess)
	m.Login(LoginFailure)
	m.Login(LoginFailure)
	m.Refresh(RefreshConverged)
	m.Request("/login", 401, 3*time.Millisecond)
	if got := testutil.ToFloat64(m.logins.WithLabelValues(LoginFailure)); got != 2 {
		t.Fatalf("failures = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.refreshes.WithLabelValues(RefreshConverged)); got != 1 {
		t.Fatalf("converged = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.requests); n != 1 {
		t.Fatalf("request series = %d, want 1", n)
	}
	// Every metric name follows Prometheus conventions and lints clean.
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "canopy_") {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
	var nilM *Issuer
	nilM.Login(LoginSuccess) // a nil *Issuer records nothing and does not panic
}
