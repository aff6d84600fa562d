package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// maxJWKSBytes bounds a fetched key set; Canopy's has a handful of keys.
const maxJWKSBytes = 1 << 20

// RemoteOptions configure a RemoteKeySet. Zero values take the defaults.
type RemoteOptions struct {
	// Client fetches the key set; default localhost.Client(10 * time.Second),
	// which dials *.localhost names on loopback.
	Client *http.Client
	// Now is the clock behind the unknown-kid rate limit; default time.Now.
	Now func() time.Time
	// MinRefresh is the shortest time between two fetches caused by unknown
	// kids, and the floor under Cache-Control's max-age; default 10s.
	MinRefresh time.Duration
	// MaxRefresh caps max-age, so a key removal is seen within it; default 1h.
	MaxRefresh time.Duration
	// DefaultRefresh is used when the response gives no max-age; default 5m.
	DefaultRefresh time.Duration
	// Logger gets fetch failures and skipped keys; default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told the outcome of every fetch (metrics).
	Observer Observer
	// Tracer, when set, records a span for every fetch.
	Tracer Tracer
}

// RemoteKeySet is a KeySet fetched from the issuer's JWKS URL. It fetches at
// start and then in the background as Cache-Control says (bounded by
// MinRefresh and MaxRefresh), with If-None-Match. An unknown kid triggers at
// most one refetch per MinRefresh, shared by every caller. A failed fetch, an
// error status, garbage or an empty set keeps the last good set, so valid
// tokens keep working while the issuer is down. Keys that are not public
// use:"sig" EdDSA/Ed25519 or ES256/P-256 keys are skipped.
type RemoteKeySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	min      time.Duration
	max      time.Duration
	def      time.Duration
	log      *slog.Logger
	observer Observer
	tracer   Tracer
	ctx      context.Context

	keys  atomic.Pointer[map[string]*jose.JSONWebKey] // nil until the first good set
	gen   atomic.Uint64
	ready chan struct{}
	wg    sync.WaitGroup

	mu           sync.Mutex
	inflight     *fetchCall
	lastKidFetch time.Time // the last fetch an unknown kid started
	lastSuccess  time.Time
	lastErr      error
	etag         string
}

// fetchCall is one fetch that concurrent callers share.
type fetchCall struct {
	done   chan struct{}
	maxAge time.Duration
	err    error
}

// NewRemoteKeySet starts fetching the key set at jwksURL in the background;
// Key answers ErrNoKeys until the first fetch succeeds (see Wait). Cancel ctx
// to stop the background refresh.
func NewRemoteKeySet(ctx context.Context, jwksURL string, opts RemoteOptions) *RemoteKeySet {
	ks := &RemoteKeySet{
		url:      jwksURL,
		client:   opts.Client,
		now:      opts.Now,
		min:      opts.MinRefresh,
		max:      opts.MaxRefresh,
		def:      opts.DefaultRefresh,
		log:      opts.Logger,
		observer: opts.Observer,
		tracer:   opts.Tracer,
		ctx:      ctx,
		ready:    make(chan struct{}),
	}
	if ks.client == nil {
		ks.client = localhost.Client(10 * time.Second)
	}
	if ks.now == nil {
		ks.now = time.Now
	}
	if ks.min <= 0 {
		ks.min = 10 * time.Second
	}
	if ks.max <= 0 {
		ks.max = time.Hour
	}
	if ks.max < ks.min {
		ks.max = ks.min
	}
	if ks.def <= 0 {
		ks.def = 5 * time.Minute
	}
	if ks.log == nil {
		ks.log = slog.Default()
	}
	ks.wg.Add(1)
	go ks.run()
	return ks
}

// Key implements KeySet. A kid not in the set triggers a refetch (at most one
// per MinRefresh, shared by all callers) before it is refused.
func (ks *RemoteKeySet) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if m := ks.keys.Load(); m != nil {
		if k, ok := (*m)[kid]; ok {
			return k, nil
		}
	}
	if c, _ := ks.startFetch(false); c != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, errorf(ErrUnknownKey, "kid %q: waiting for the key set: %v", kid, ctx.Err())
		}
	}
	m := ks.keys.Load()
	if m == nil {
		return nil, errorf(ErrNoKeys, "%v", ks.LastFetchError())
	}
	if k, ok := (*m)[kid]; ok {
		return k, nil
	}
	return nil, errorf(ErrUnknownKey, "kid %q", kid)
}

// Generation changes whenever the set's keys change (not on a refetch that
// returns the same keys).
func (ks *RemoteKeySet) Generation() uint64 { return ks.gen.Load() }

// Ready reports whether a key set has been loaded.
func (ks *RemoteKeySet) Ready() bool { return ks.keys.Load() != nil }

// Wait blocks until a key set is loaded or ctx ends.
func (ks *RemoteKeySet) Wait(ctx context.Context) error {
	select {
	case <-ks.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sso: waiting for %s: %w (last fetch: %v)", ks.url, ctx.Err(), ks.LastFetchError())
	}
}

// Healthy reports whether the last fetch (200 or 304) succeeded. False means
// the issuer looked unreachable or broken when last asked.
func (ks *RemoteKeySet) Healthy() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return !ks.lastSuccess.IsZero() && ks.lastErr == nil
}

// LastFetchError returns the last fetch's error, or nil when it succeeded.
func (ks *RemoteKeySet) LastFetchError() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.lastErr == nil && ks.lastSuccess.IsZero() {
		return errors.New("no fetch finished yet")
	}
	return ks.lastErr
}

// LastSuccess returns when a fetch last succeeded (zero: never).
func (ks *RemoteKeySet) LastSuccess() time.Time {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.lastSuccess
}

// Refresh fetches the key set now, ignoring the rate limit, and returns the
// fetch's error. Tests and operators use it; requests never need to.
func (ks *RemoteKeySet) Refresh(ctx context.Context) error {
	for {
		c, started := ks.startFetch(true)
		if c == nil {
			return errClosed
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		// A fetch already in flight may have read the set before the
		// caller changed it: wait for it, then fetch again.
		if started {
			return c.err
		}
	}
}

// startFetch joins the fetch in flight or starts one (started reports which).
// Unless forced, it starts none within MinRefresh of the last fetch an unknown
// kid started, and returns nil: that is the shared "one refetch per 10 s" for
// unknown kids. Background refreshes do not count against it, so a new key
// published just after one is still found at once.
func (ks *RemoteKeySet) startFetch(force bool) (c *fetchCall, started bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.inflight != nil {
		return ks.inflight, false
	}
	now := ks.now()
	if !force && !ks.lastKidFetch.IsZero() && now.Sub(ks.lastKidFetch) < ks.min {
		return nil, false
	}
	if ks.ctx.Err() != nil {
		return nil, false
	}
	if !force {
		ks.lastKidFetch = now
	}
	c = &fetchCall{done: make(chan struct{})}
	ks.inflight = c
	ks.wg.Add(1)
	// The fetch runs under the set's own context: one caller giving up must
	// not cancel it for the others waiting.
	go func() {
		defer ks.wg.Done()
		c.maxAge, c.err = ks.fetch()
		ks.mu.Lock()
		ks.inflight = nil
		ks.mu.Unlock()
		close(c.done)
	}()
	return c, true
}

// fetch does one conditional GET and installs a new good set.
func (ks *RemoteKeySet) fetch() (time.Duration, error) {
	ks.mu.Lock()
	etag := ks.etag
	if ks.keys.Load() == nil {
		etag = "" // nothing to keep on a 304
	}
	ks.mu.Unlock()

	ctx := ks.ctx
	var span Span
	if ks.tracer != nil {
		// A root span: the fetch serves every caller, not the one that
		// happened to start it.
		ctx, span = ks.tracer.Start(ctx, SpanKeySetFetch)
		span.SetAttribute(AttrKeySetURL, ks.url)
	}
	res, err := fetchJSON(ctx, ks.client, ks.url, etag, maxJWKSBytes)
	first := false
	if err == nil && !res.notModified {
		first, err = ks.install(res)
	}
	if span != nil {
		outcome := FetchUpdated
		switch {
		case err != nil:
			outcome = FetchError
		case res.notModified:
			outcome = FetchNotModified
		}
		span.SetAttribute(AttrKeySetOutcome, outcome)
		span.End(err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.lastErr = err
	if ks.observer != nil {
		switch {
		case err != nil:
			ks.observer.KeySetFetched(FetchError)
		case res.notModified:
			ks.observer.KeySetFetched(FetchNotModified)
		default:
			ks.observer.KeySetFetched(FetchUpdated)
		}
	}
	if err != nil {
		ks.log.Warn("sso: key set fetch failed; keeping the last good set", "url", ks.url, "err", err)
		return 0, err
	}
	ks.lastSuccess = ks.now()
	if first {
		close(ks.ready) // after the health fields, so Wait's callers see them
	}
	return res.maxAge, nil
}

// install parses a fetched body and, when it holds usable keys, makes it the
// current set; first reports that it is the first set ever.
func (ks *RemoteKeySet) install(res *fetchResult) (first bool, err error) {
	m, skipped, err := parseKeySet(res.body)
	if err != nil {
		return false, err
	}
	for _, s := range skipped {
		ks.log.Warn("sso: skipping key", "url", ks.url, "reason", s)
	}
	if len(m) == 0 {
		return false, fmt.Errorf("GET %s: no usable keys in the set", ks.url)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.etag = res.etag
	old := ks.keys.Load()
	if old == nil || !sameKeys(*old, m) {
		ks.keys.Store(&m)
		ks.gen.Add(1)
	}
	return old == nil, nil
}

// maxRetry caps the backoff after failures, so a relying service started
// while the issuer is down recovers soon after it comes up.
const maxRetry = 30 * time.Second

// run refreshes the set in the background until the context ends.
func (ks *RemoteKeySet) run() {
	defer ks.wg.Done()
	var delay time.Duration
	failures := 0
	for {
		t := time.NewTimer(delay)
		select {
		case <-ks.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c, _ := ks.startFetch(true)
		if c == nil {
			return
		}
		<-c.done
		if c.err != nil {
			failures++
			delay = min(ks.min<<min(failures-1, 10), max(maxRetry, ks.min))
			continue
		}
		failures = 0
		delay = ks.refreshDelay(c.maxAge)
	}
}

// refreshDelay bounds max-age to [MinRefresh, MaxRefresh].
func (ks *RemoteKeySet) refreshDelay(age time.Duration) time.Duration {
	if age < 0 {
		age = ks.def
	}
	return min(max(age, ks.min), ks.max)
}

// wait blocks until every goroutine of the set has ended (after ctx ends).
func (ks *RemoteKeySet) wait() { ks.wg.Wait() }
