package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// Options configure New. Only Issuer is required.
type Options struct {
	// Issuer is the issuer URL: discovery, the key set and the revocation
	// feed come from it, and it must equal the tokens' iss.
	Issuer string
	// Audience overrides the discovery document's canopy_cookie_domain as
	// the required aud.
	Audience string
	// CookieName overrides the discovery document's canopy_cookie_name.
	CookieName string
	// RevocationPoll is how often the revocation feed is read while the
	// revocation stream is down (or when there is none); default 10s.
	RevocationPoll time.Duration
	// NoRevocationStream turns off the revocation stream the discovery
	// document offers (canopy_revocation_stream_uri): revocations then
	// arrive at the next poll instead of at once.
	NoRevocationStream bool
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeeway (30 s), NoLeeway (any negative value) none.
	Leeway time.Duration
	// MaxTokenAge bounds exp - iat; zero means DefaultMaxTokenAge (1 h).
	MaxTokenAge time.Duration
	// HTTPClient talks to the issuer; default localhost.Client(10 * time.Second).
	HTTPClient *http.Client
	// CacheSize bounds the verified-token cache; see Config.CacheSize.
	CacheSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger gets background failures; default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told every verification and key-set fetch (metrics).
	Observer Observer
	// Tracer, when set, records a span for every verification and key-set
	// fetch (package tracing adapts OpenTelemetry).
	Tracer Tracer
}

// Client wires discovery, a RemoteKeySet, a RevocationList and a Verifier for
// a relying service; ssohttp.Middleware makes its middleware. It is safe for
// concurrent use.
type Client struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	state  atomic.Pointer[clientState] // nil until discovery succeeds
	ready  chan struct{}
	probe  *issuerProbe
	// ownClient: the HTTP client is ours, so Close may drop its connections.
	ownClient bool

	mu       sync.Mutex
	lastErr  error
	onRevoke []func(Revocations)
}

// clientState is everything that needs the discovery document.
type clientState struct {
	disc     *wire.Discovery
	keys     *RemoteKeySet
	revoked  *RevocationList
	verifier *Verifier
	site     Site
}

// New returns a Client for opts.Issuer. It fails only on bad options: when the
// issuer is unreachable it still returns a Client, whose middleware answers
// 503 until discovery and the first key set succeed (retried in the
// background with backoff), and which then works without a restart. Close
// (or cancelling ctx) stops the background work.
func New(ctx context.Context, opts Options) (*Client, error) {
	if !absoluteHTTP(opts.Issuer) {
		return nil, fmt.Errorf("sso: issuer %q is not an absolute http(s) URL", opts.Issuer)
	}
	ownClient := opts.HTTPClient == nil
	if ownClient {
		opts.HTTPClient = localhost.Client(10 * time.Second)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RevocationPoll < 0 {
		return nil, fmt.Errorf("sso: revocation poll %v is negative", opts.RevocationPoll)
	}
	// The verifier's own checks, before anything starts; the audience may
	// come from discovery later, so a stand-in passes here.
	if err := verifierConfig(opts).Validate(); err != nil {
		return nil, err
	}
	c := &Client{opts: opts, ownClient: ownClient, ready: make(chan struct{}), lastErr: errors.New("discovery has not finished")}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.probe = newIssuerProbe(opts.HTTPClient, strings.TrimSuffix(opts.Issuer, "/")+"/healthz", opts.Now)
	c.wg.Add(1)
	go c.discoverLoop()
	return c, nil
}

// discoverLoop retries discovery with backoff until it succeeds, then wires
// the rest.
func (c *Client) discoverLoop() {
	defer c.wg.Done()
	delay := time.Second
	for {
		st, err := c.connect()
		if err == nil {
			c.state.Store(st)
			close(c.ready)
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		c.opts.Logger.Warn("sso: issuer discovery failed; answering 503 and retrying", "issuer", c.opts.Issuer, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxRetry)
	}
}

// connect reads discovery and starts the key set and the revocation poller.
func (c *Client) connect() (*clientState, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	d, err := Discover(ctx, c.opts.Issuer, c.opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	site := Site{
		CookieName:   firstNonEmpty(c.opts.CookieName, d.CookieName),
		CookieDomain: firstNonEmpty(c.opts.Audience, d.CookieDomain),
		RefreshURL:   d.RefreshURI,
		LoginURL:     d.LoginURI,
	}
	if err := site.Validate(); err != nil {
		return nil, fmt.Errorf("sso: discovery document of %s: %w", c.opts.Issuer, err)
	}
	cfg := verifierConfig(c.opts)
	cfg.Audience = site.CookieDomain
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Nothing below fails, so no retry leaves goroutines behind.
	st := &clientState{disc: d, site: site}
	st.keys = NewRemoteKeySet(c.ctx, d.JWKSURI, RemoteOptions{Client: c.opts.HTTPClient, Now: c.opts.Now, Logger: c.opts.Logger, Observer: c.opts.Observer,
		Tracer: c.opts.Tracer})
	if feed := firstNonEmpty(d.RevocationV2URI, d.RevocationURI); feed != "" {
		ro, _ := c.opts.Observer.(RevocationObserver)
		st.revoked = NewRevocationList(c.ctx, feed, RevocationOptions{
			Client: c.opts.HTTPClient, Interval: c.opts.RevocationPoll, Leeway: c.opts.Leeway,
			Now: c.opts.Now, Logger: c.opts.Logger, UserLevel: d.RevocationV2URI != "",
			OnRevoke: c.revokedNow, Observer: ro, StreamURL: c.streamURL(d),
		})
		cfg.Revoked = st.revoked
	} else {
		c.opts.Logger.Warn("sso: discovery has no canopy_revocation_uri; revoked sessions stay valid until their tokens expire", "issuer", c.opts.Issuer)
	}
	st.verifier, err = NewVerifier(st.keys, cfg)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// streamURL is the revocation stream to follow, or "".
func (c *Client) streamURL(d *wire.Discovery) string {
	if c.opts.NoRevocationStream || d.RevocationV2URI == "" {
		return ""
	}
	return d.RevocationStreamURI
}

// RevocationStreamConnected reports whether the revocation stream is
// connected (false before discovery, without a stream, or while it is down
// and the feed is polled instead).
func (c *Client) RevocationStreamConnected() bool {
	st := c.state.Load()
	return st != nil && st.revoked != nil && st.revoked.StreamConnected()
}

// verifierConfig is the verifier config Options ask for, audience aside.
func verifierConfig(opts Options) Config {
	aud := opts.Audience
	if aud == "" {
		aud = "audience-from-discovery"
	}
	return Config{
		Issuer:      opts.Issuer,
		Audience:    aud,
		Leeway:      opts.Leeway,
		MaxTokenAge: opts.MaxTokenAge,
		CacheSize:   opts.CacheSize,
		Now:         opts.Now,
		Observer:    opts.Observer,
		Tracer:      opts.Tracer,
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Ready reports whether discovery succeeded and a key set is loaded, i.e.
// whether tokens can be verified (a relying service's /readyz).
func (c *Client) Ready() bool {
	st := c.state.Load()
	return st != nil && st.keys.Ready()
}

// Wait blocks until the Client is Ready or ctx ends.
func (c *Client) Wait(ctx context.Context) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return fmt.Errorf("sso: waiting for discovery: %w (last error: %v)", ctx.Err(), c.lastError())
	}
	return c.state.Load().keys.Wait(ctx)
}

func (c *Client) lastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Discovery returns the issuer's discovery document, or nil before it has
// been read.
func (c *Client) Discovery() *wire.Discovery {
	if st := c.state.Load(); st != nil {
		return st.disc
	}
	return nil
}

// Verifier returns the Verifier, or nil before discovery succeeded (Verify
// works at any time).
func (c *Client) Verifier() *Verifier {
	if st := c.state.Load(); st != nil {
		return st.verifier
	}
	return nil
}

// KeySet returns the remote key set, or nil before discovery succeeded.
func (c *Client) KeySet() *RemoteKeySet {
	if st := c.state.Load(); st != nil {
		return st.keys
	}
	return nil
}

// Verify verifies token; before discovery has succeeded it returns an error
// wrapping ErrNoKeys.
func (c *Client) Verify(ctx context.Context, token string) (*Claims, error) {
	st := c.state.Load()
	if st == nil {
		if token == "" {
			return nil, ErrMissing
		}
		return nil, errorf(ErrNoKeys, "issuer discovery: %v", c.lastError())
	}
	return st.verifier.Verify(ctx, token)
}

// OnRevoke registers fn to be called, from the revocation poller, with
// what each poll adds to the revocation set: a proxy closes the
// long-lived connections of the sessions it names (Revocations.Matches).
func (c *Client) OnRevoke(fn func(Revocations)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRevoke = append(c.onRevoke, fn)
}

func (c *Client) revokedNow(r Revocations) {
	c.mu.Lock()
	fns := slices.Clone(c.onRevoke)
	c.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// RevokedClaims reports whether the revocation set holds a token with these
// claims (false before discovery, or without a feed).
func (c *Client) RevokedClaims(cl *Claims) bool {
	st := c.state.Load()
	return st != nil && st.revoked != nil && st.revoked.RevokedClaims(cl)
}

// RevocationFeedError returns why the issuer's revocation feed could not be
// read whole while the issuer answered (RevocationList.FeedError), or nil.
// A relying service is then not ready: revocations may be missed.
func (c *Client) RevocationFeedError() error {
	if st := c.state.Load(); st != nil && st.revoked != nil {
		return st.revoked.FeedError()
	}
	return nil
}

// Close stops the background work and waits for it to end.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	if st := c.state.Load(); st != nil {
		st.keys.wait()
		if st.revoked != nil {
			st.revoked.wait()
		}
	}
	if c.ownClient {
		c.opts.HTTPClient.CloseIdleConnections()
	}
	return nil
}

// Current returns what the HTTP layer (ssohttp) needs for a request: the
// Verifier and the Site discovery gave. Both stay the same for the
// Client's life once discovery has succeeded; before that, Current returns
// an error wrapping ErrNoKeys.
func (c *Client) Current() (*Verifier, *Site, error) {
	st := c.state.Load()
	if st == nil {
		return nil, nil, errorf(ErrNoKeys, "issuer discovery: %v", c.lastError())
	}
	return st.verifier, &st.site, nil
}

// IssuerDown reports whether the issuer's /healthz fails, probed with a 2 s
// timeout and the answer kept for 5 s. The middleware asks it only before
// sending an expired session to the issuer.
func (c *Client) IssuerDown() bool { return c.probe.down() }
