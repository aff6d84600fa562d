package site

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/canopy-sso/canopy/pkg/metricsrv"
	"github.com/canopy-sso/canopy/pkg/sso"
)

// Metrics are the relying service's Prometheus metrics. It is the sso.Observer
// given to sso.New, so every verification and key-set fetch is counted.
type Metrics struct {
	Registry      *prometheus.Registry
	verifications *prometheus.CounterVec
	cache         *prometheus.CounterVec
	fetches       *prometheus.CounterVec
	requests      *prometheus.HistogramVec
	feedPolls     *prometheus.CounterVec
	streamUp      prometheus.Gauge
}

var (
	_ sso.Observer                 = (*Metrics)(nil)
	_ sso.RevocationObserver       = (*Metrics)(nil)
	_ sso.RevocationStreamObserver = (*Metrics)(nil)
)

// NewMetrics registers the relying service's metrics on a new registry.
// keySetAge reports the age of the key set in use (0 before the first fetch).
func NewMetrics(keySetAge func() time.Duration) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_relying_verifications_total",
			Help: "Token verifications by outcome (accepted, rejected) and reason (ok, missing, expired, revoked, malformed, signature, claims, unavailable).",
		}, []string{"outcome", "reason"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_relying_token_cache_total",
			Help: "Verifications answered by the verified-token cache (hit) or by a signature check (miss); the hit ratio is hit / (hit + miss).",
		}, []string{"result"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_relying_jwks_fetches_total", Help: "Key-set fetches by outcome (updated, not_modified, error).",
		}, []string{"outcome"}),
		feedPolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_relying_revocation_polls_total",
			Help: "Revocation feed polls by outcome (updated, not_modified, unreachable, unreadable); unreadable means the issuer answered with a feed that could not be read whole, and readyz answers 503.",
		}, []string{"outcome"}),
		streamUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_relying_revocation_stream_connected",
			Help: "1 while the issuer's revocation stream is connected (revocations arrive at once), 0 while the feed is polled instead.",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canopy_relying_request_duration_seconds", Help: "HTTP request latency by status class.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"code"}),
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "canopy_relying_jwks_age_seconds", Help: "Seconds since the key set in use was last fetched successfully.",
	}, func() float64 { return keySetAge().Seconds() })
	reg.MustRegister(m.verifications, m.cache, m.fetches, m.requests, m.feedPolls, m.streamUp, age,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"hit", "miss"} {
		m.cache.WithLabelValues(r)
	}
	for _, o := range []string{sso.FetchUpdated, sso.FetchNotModified, sso.FetchError} {
		m.fetches.WithLabelValues(o)
	}
	for _, o := range []string{sso.PollUpdated, sso.PollNotModified, sso.PollUnreachable, sso.PollUnreadable} {
		m.feedPolls.WithLabelValues(o)
	}
	return m
}

// Verified implements sso.Observer.
func (m *Metrics) Verified(reason string, cached bool) {
	if reason == "" {
		m.verifications.WithLabelValues("accepted", "ok").Inc()
	} else {
		m.verifications.WithLabelValues("rejected", reason).Inc()
	}
	// Only tokens that reached the cache lookup count toward the hit ratio.
	if reason != "missing" {
		if cached {
			m.cache.WithLabelValues("hit").Inc()
		} else {
			m.cache.WithLabelValues("miss").Inc()
		}
	}
}

// KeySetFetched implements sso.Observer.
func (m *Metrics) KeySetFetched(outcome string) { m.fetches.WithLabelValues(outcome).Inc() }

// RevocationPolled implements sso.RevocationObserver.
func (m *Metrics) RevocationPolled(outcome string) { m.feedPolls.WithLabelValues(outcome).Inc() }

// RevocationStreamConnected implements sso.RevocationStreamObserver.
func (m *Metrics) RevocationStreamConnected(up bool) {
	if up {
		m.streamUp.Set(1)
	} else {
		m.streamUp.Set(0)
	}
}

// Instrument observes each request's latency.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(metricsrv.CodeClass(sw.status)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushes, upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
