package sso

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

func TestIssuerProbe(t *testing.T) {
	var status atomic.Int64
	var hits atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	clk := ssotest.NewClock()
	p := newIssuerProbe(srv.Client(), srv.URL+"/healthz", clk.Now)
	if p.down() {
		t.Fatal("healthy issuer reported down")
	}
	status.Store(503)
	if p.down() || hits.Load() != 1 {
		t.Fatalf("cached answer not used: hits %d", hits.Load())
	}
	clk.Add(probeTTL)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.down() {
				t.Error("503 issuer reported up")
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 2 {
		t.Fatalf("concurrent probes not collapsed: %d hits", hits.Load())
	}
	srv.Close()
	clk.Add(probeTTL)
	if !p.down() {
		t.Fatal("unreachable issuer reported up")
	}
}
