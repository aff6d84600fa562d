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

	// Outcomes of sign-ins at upstream OpenID providers.
	UpstreamSuccess     = "success"
	UpstreamDenied      = "denied"      // the provider answered error=…
	UpstreamBadState    = "bad_state"   // unknown, replayed or foreign state; another browser
	UpstreamInvalid     = "invalid"     // the code or id_token was refused
	UpstreamUnavailable = "unavailable" // down, slow or garbage
	UpstreamRefused     = "refused"     // verified, but not admitted or linked here
	UpstreamUnknown     = "unknown_provider"
	// RefreshOverloaded: the store's write queue was full; answered 503.
	RefreshOverloaded = "overloaded"

	// Outcomes of back-channel logout attempts.
	BackchannelDelivered = "delivered"
	BackchannelFailed    = "failed"  // will be retried
	BackchannelGaveUp    = "gave_up" // failed BackchannelMaxAttempts times
	BackchannelDropped   = "dropped" // too old, or too many pending for the client
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
	// upstream counts sign-ins at upstream providers by provider and outcome.
	upstream *prometheus.CounterVec
	// SQLite's group commit (sqlstore.GroupCommit): rotations per
	// transaction, the COMMIT's latency (its fsync), failed COMMITs.
	batchSize     prometheus.Histogram
	commitLatency prometheus.Histogram
	commitErrors  prometheus.Counter
	// streams is the number of open revocation streams.
	streams prometheus.Gauge
	// backchannel counts back-channel logout attempts by outcome.
	backchannel *prometheus.CounterVec
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
			Name: "canopy_issuer_refreshes_total", Help: "Refresh-token uses by outcome (rotated, converged, reuse_detected, expired, unknown, error, overloaded).",
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
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_issuer_upstream_logins_total",
			Help: "Sign-ins at upstream OpenID providers by provider (--idp name) and outcome (success, denied, bad_state, invalid, unavailable, refused, unknown_provider).",
		}, []string{"idp", "outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_issuer_store_batch_size", Help: "Refresh rotations committed together in one SQLite transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_issuer_store_commit_seconds", Help: "Latency of one group commit's COMMIT, its fsync included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_issuer_store_commit_errors_total", Help: "Group commits whose COMMIT failed; every rotation in them was answered with an error.",
		}),
		backchannel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_issuer_backchannel_logouts_total",
			Help: "Back-channel logout attempts by outcome (delivered, failed, gave_up, dropped).",
		}, []string{"outcome"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_issuer_revocation_streams", Help: "Revocation streams (Server-Sent Events) open on this instance.",
		}),
	}
	reg.MustRegister(m.upstream, m.backchannel)
	for _, o := range []string{BackchannelDelivered, BackchannelFailed, BackchannelGaveUp, BackchannelDropped} {
		m.backchannel.WithLabelValues(o)
	}
	reg.MustRegister(m.batchSize, m.commitLatency, m.commitErrors)
	reg.MustRegister(m.streams, m.logins, m.refreshes, m.requests, m.signups, m.factorThrottled, m.accountCapped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{LoginSuccess, LoginFailure, LoginThrottled, LoginBusy} {
		m.logins.WithLabelValues(o)
	}
	for _, o := range []string{RefreshRotated, RefreshConverged, RefreshReuse, RefreshEnded, RefreshUnknown, RefreshError, RefreshOverloaded} {
		m.refreshes.WithLabelValues(o)
	}
	return m
}

// CommitBatch observes one group commit (it is a sqlstore.CommitObserver).
func (m *Issuer) CommitBatch(size int, commit time.Duration, err error) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(size))
	m.commitLatency.Observe(commit.Seconds())
	if err != nil {
		m.commitErrors.Inc()
	}
}

// WatchQueue exports depth, read at each scrape, as the gauge of rotations
// waiting for the group writer.
func (m *Issuer) WatchQueue(depth func() int) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "canopy_issuer_store_queue_depth", Help: "Refresh rotations waiting for the SQLite group writer.",
	}, func() float64 { return float64(depth()) }))
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

// Upstream counts a sign-in at an upstream provider; idp is a configured
// name, or "" when the request named none that is.
func (m *Issuer) Upstream(idp, outcome string) {
	if m != nil {
		m.upstream.WithLabelValues(idp, outcome).Inc()
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

// Backchannel counts a back-channel logout attempt, or a row dropped.
func (m *Issuer) Backchannel(outcome string) {
	if m != nil {
		m.backchannel.WithLabelValues(outcome).Inc()
	}
}
