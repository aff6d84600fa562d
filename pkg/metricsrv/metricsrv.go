// Package metricsrv serves a Prometheus registry at /metrics on a listener of
// its own, apart from a service's public endpoints.
package metricsrv

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve serves /metrics for g on addr until ctx ends. It returns once listening
// (or failing to listen); serving continues in the background.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	// Serve only ends at Shutdown or on a broken listener; either way the
	// public listener, not this one, decides the process's fate.
	go func() { _ = hs.Serve(ln) }()
	return ln.Addr(), nil
}

// CodeClass is an HTTP status as a low-cardinality label: "2xx" … "5xx".
func CodeClass(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	}
	return "2xx"
}
