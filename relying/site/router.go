package site

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/relying/policy"
)

// RouterConfig is what a Router needs besides its policy.
type RouterConfig struct {
	// Client returns the sso.Client of an issuer; the Router asks once per
	// issuer of every policy it loads and keeps the answer. The caller owns
	// the clients (and closes them).
	Client         func(issuer string) (*sso.Client, error)
	TrustedProxies []netip.Prefix
	Log            *slog.Logger
	Now            func() time.Time
	Tracer         trace.Tracer // optional: spans around proxied requests
}

// Router serves every host of a policy: each request is handled by the
// entry its host matches, under the policy that was current when it
// arrived; Load swaps in another policy for the requests that follow.
type Router struct {
	cfg RouterConfig
	cur atomic.Pointer[routes]

	mu      sync.Mutex // serializes Load; guards clients and conns
	clients map[string]*sso.Client
	conns   map[*sso.Client]*liveConns
}

// routes is one loaded policy with the handler of each of its entries.
type routes struct {
	policy  *policy.Policy
	sites   map[*policy.Host]*Site
	clients []*sso.Client // every issuer's, for readyz
}

// NewRouter returns a Router serving p.
func NewRouter(cfg RouterConfig, p *policy.Policy) (*Router, error) {
	if cfg.Client == nil {
		return nil, errors.New("site: router needs a Client func")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	rt := &Router{cfg: cfg, clients: map[string]*sso.Client{}, conns: map[*sso.Client]*liveConns{}}
	if err := rt.Load(p); err != nil {
		return nil, err
	}
	return rt, nil
}

// Load builds a handler for every entry of p and makes p current. On an
// error the current policy stays. Requests already in flight finish under
// the policy they started with.
func (rt *Router) Load(p *policy.Policy) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rs := &routes{policy: p, sites: map[*policy.Host]*Site{}}
	for _, h := range p.Hosts {
		client, err := rt.client(h.Issuer)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Pattern, err)
		}
		var conns *liveConns
		if h.Upstream != nil {
			if conns = rt.conns[client]; conns == nil {
				// One per client, registered once: reloads add no callbacks.
				conns = newLiveConns(rt.cfg.Now)
				client.OnRevoke(conns.revoke)
				rt.conns[client] = conns
			}
		}
		s, err := newSite(Config{
			Pattern: h.Pattern, Issuer: h.Issuer, Client: client, Upstream: h.Upstream, ForwardToken: h.ForwardToken,
			TrustedProxies: rt.cfg.TrustedProxies, AnyUser: h.Pattern.PerUser && !h.OwnerOnly, Rule: h.Rule(),
			Public: h.Public, Log: rt.cfg.Log, Now: rt.cfg.Now, Tracer: rt.cfg.Tracer,
		}, conns)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Pattern, err)
		}
		rs.sites[h] = s
	}
	for _, iss := range p.Issuers() {
		rs.clients = append(rs.clients, rt.clients[iss])
	}
	rt.cur.Store(rs)
	return nil
}

// Policy is the policy in use.
func (rt *Router) Policy() *policy.Policy { return rt.cur.Load().policy }

func (rt *Router) client(issuer string) (*sso.Client, error) {
	if c := rt.clients[issuer]; c != nil {
		return c, nil
	}
	c, err := rt.cfg.Client(issuer)
	if err != nil {
		return nil, err
	}
	rt.clients[issuer] = c
	return c, nil
}

// match is the site serving hostport, if any.
func (rs *routes) match(hostport string) (*Site, bool) {
	h, _, ok := rs.policy.Match(hostport)
	if !ok {
		return nil, false
	}
	return rs.sites[h], true
}

// ServeHTTP takes one snapshot of the policy for the whole request. Health
// checks and forward auth arrive on whatever host the caller used; forward
// auth picks the entry by the original URL's host. Any other request is
// served by the entry of its Host, or gets 404 before any auth.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs := rt.cur.Load()
	switch r.URL.Path {
	case "/.canopy/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
		return
	case "/.canopy/readyz":
		rs.readyz(w)
		return
	case AuthPath:
		rt.forwardAuth(w, r, rs)
		return
	}
	s, ok := rs.match(r.Host)
	if !ok {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		render(w, rt.cfg.Log, http.StatusNotFound, "notfound.html", map[string]any{"Host": r.Host})
		return
	}
	s.headers(w)
	s.app.ServeHTTP(w, r)
}

func (rs *routes) readyz(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, c := range rs.clients {
		if !c.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "no key set loaded yet: the issuer has not been reached")
			return
		}
		if err := c.RevocationFeedError(); err != nil {
			// The issuer answers but its feed cannot be read whole:
			// revocations may be missed, so take no traffic.
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "revocation feed unreadable: %v\n", err)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}
