// Package metrics defines the issuer's Prometheus metrics and serves them on
// their own listener, apart from the public endpoints.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/canopy-sso/canopy/pkg/metricsrv"
)

// Outcomes recorded by the issuer.
const (
	LoginSuccess   = "success"
	LoginFailure   = "failure"
	LoginThrottled = "throttled"
	LoginBusy      = "busy"

	RefreshRotated   = "rotated"
	RefreshConverged = "converged"
	RefreshReuse     = "reuse_detected"
	RefreshEnded     = "expired"
	RefreshUnknown   = "unknown"
	RefreshError     = "error"
)

// Issuer holds the issuer's metrics. A nil *Issuer records nothing.
type Issuer struct {
	Registry  *prometheus.Registry
	logins    *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	requests  *prometheus.HistogramVec
	signups   prometheus.Counter
	// factorThrottled counts second-factor attempts refused by the throttle.
	factorThrottled prometheus.Counter
	// accountCapped counts failures after which the per-account wait was capped.
	accountCapped prometheus.Counter
	// streams is the number of open revocation streams.
	streams prometheus.Gauge
}

// NewIssuer registers the issuer's metrics (and Go and process collectors) on a new registry.
func NewIssuer() *Issuer {
	reg := prometheus.NewRegistry()
	m := &Issuer{
		Registry: reg,
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_issuer_logins_total", Help: "Password logins by outcome (success, failure, throttled, busy).",
		}, []string{"outcome"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_issuer_refreshes_total", Help: "Refresh-token uses by outcome (rotated, converged, reuse_detected, expired, unknown, error).",
		}, []string{"outcome"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canopy_issuer_request_duration_seconds", Help: "HTTP request latency by route and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "code"}),
		signups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_issuer_signups_total", Help: "Accounts created through the sign-up form.",
		}),
		factorThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_issuer_second_factor_throttled_total", Help: "Second-factor codes refused unchecked because of too many wrong ones.",
		}),
		accountCapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_issuer_throttle_account_capped_total",
			Help: "Failed sign-ins after which an account's wait was capped for browsers without its device cookie: guessing from many addresses.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_issuer_revocation_streams", Help: "Revocation streams (Server-Sent Events) open on this instance.",
		}),
	}
	reg.MustRegister(m.streams, m.logins, m.refreshes, m.requests, m.signups, m.factorThrottled, m.accountCapped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{LoginSuccess, LoginFailure, LoginThrottled, LoginBusy} {
		m.logins.WithLabelValues(o)
	}
	for _, o := range []string{RefreshRotated, RefreshConverged, RefreshReuse, RefreshEnded, RefreshUnknown, RefreshError} {
		m.refreshes.WithLabelValues(o)
	}
	return m
}

// Login counts a login attempt.
func (m *Issuer) Login(outcome string) {
	if m != nil {
		m.logins.WithLabelValues(outcome).Inc()
	}
}

// Refresh counts a refresh-token use.
func (m *Issuer) Refresh(outcome string) {
	if m != nil {
		m.refreshes.WithLabelValues(outcome).Inc()
	}
}

// Signup counts an account created through the form.
func (m *Issuer) Signup() {
	if m != nil {
		m.signups.Inc()
	}
}

// SecondFactorThrottled counts a second-factor attempt the throttle refused.
func (m *Issuer) SecondFactorThrottled() {
	if m != nil {
		m.factorThrottled.Inc()
	}
}

// AccountThrottleCapped counts a failure after which an account's wait was
// capped for browsers without its device cookie.
func (m *Issuer) AccountThrottleCapped() {
	if m != nil {
		m.accountCapped.Inc()
	}
}

// Request observes one request's latency; route is the registered path, never the raw URL.
func (m *Issuer) Request(route string, status int, d time.Duration) {
	if m != nil {
		m.requests.WithLabelValues(route, metricsrv.CodeClass(status)).Observe(d.Seconds())
	}
}

// StreamOpened and StreamClosed track the open revocation streams.
func (m *Issuer) StreamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}

// StreamClosed: see StreamOpened.
func (m *Issuer) StreamClosed() {
	if m != nil {
		m.streams.Dec()
	}
}
