package site

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
	"github.com/canopy-sso/canopy/relying/policy"
)

//go:embed templates/*.html templates/*.css
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

//go:embed templates/site.css
var siteCSS []byte

// Config is what the relying example needs for one host pattern.
type Config struct {
	Pattern        policy.Pattern
	Issuer         string // issuer URL, for the account and sign-out links
	Client         *sso.Client
	Upstream       *url.URL // proxy mode when set
	ForwardToken   bool     // proxy mode: pass the access token to the app as Authorization: Bearer
	TrustedProxies []netip.Prefix
	// AnyUser lets any signed-in user into a {username} host; by default
	// only its owner (policy: owner_only: false).
	AnyUser bool
	// Rule, when set, is asked about every signed-in request after the
	// owner check (--require-group, --require-amr, --max-auth-age).
	Rule ssohttp.Rule
	// Public, when set, reports the URL paths that need no sign-in
	// (policy.Host.Public: it cleans the path itself).
	Public func(path string) bool
	Log    *slog.Logger
	Now    func() time.Time
	// Tracer, when set, records a span around every proxied request and
	// passes its context on to the upstream (see package tracing).
	Tracer trace.Tracer
}

// Site serves the relying example for one host pattern.
type Site struct {
	cfg   Config
	proxy *httputil.ReverseProxy
	conns *liveConns // proxied requests in flight, closed on revocation
	app   http.Handler
}

// New returns the example's handler for one host pattern: a Router over
// cfg alone.
func New(cfg Config) (http.Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("site: no sso client")
	}
	var conns *liveConns
	if cfg.Upstream != nil {
		conns = newLiveConns(cfg.Now)
		cfg.Client.OnRevoke(conns.revoke)
	}
	s, err := newSite(cfg, conns)
	if err != nil {
		return nil, err
	}
	h := &policy.Host{Pattern: cfg.Pattern, Issuer: cfg.Issuer, Upstream: cfg.Upstream}
	rt := &Router{cfg: RouterConfig{TrustedProxies: cfg.TrustedProxies, Log: s.cfg.Log}}
	rt.cur.Store(&routes{policy: &policy.Policy{Issuer: cfg.Issuer, Hosts: []*policy.Host{h}},
		sites: map[*policy.Host]*Site{h: s}, clients: []*sso.Client{cfg.Client}})
	return rt, nil
}

// newSite builds the handler of one host; conns, shared by every site of
// one client, is required in proxy mode.
func newSite(cfg Config, conns *liveConns) (*Site, error) {
	if cfg.Client == nil {
		return nil, errors.New("site: no sso client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Site{cfg: cfg}
	if cfg.Upstream != nil {
		s.proxy = s.newProxy(cfg.Upstream, cfg.Log)
		s.conns = conns
	}
	protect, err := ssohttp.Middleware(cfg.Client, ssohttp.MiddlewareConfig{Authorize: s.authorize,
		TrustedProxies: cfg.TrustedProxies, Logger: cfg.Log, Skipper: s.public})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(ssohttp.RefreshScriptPath, ssohttp.RefreshScriptHandler(cfg.Client))
	mux.HandleFunc("/.canopy/site.css", serveCSS)
	mux.Handle("/", protect(http.HandlerFunc(s.serveApp)))
	s.app = mux
	return s, nil
}

// public reports whether r's path needs no sign-in.
func (s *Site) public(r *http.Request) bool {
	return s.cfg.Public != nil && s.cfg.Public(r.URL.Path)
}

// authorize is the example's rule: a per-user host is its owner's alone
// (a plain 403: signing in again would not help), then the configured Rule.
func (s *Site) authorize(r *http.Request, c *sso.Claims) error {
	return s.authorizeHost(r.Host, r, c)
}

func (s *Site) authorizeHost(host string, r *http.Request, c *sso.Claims) error {
	label, ok := s.cfg.Pattern.Match(host)
	if s.cfg.Pattern.PerUser && !s.cfg.AnyUser && (!ok || c.Username != label) {
		return &ssohttp.ForbiddenError{Message: fmt.Sprintf("This page belongs to %s. You are signed in as %s.", label, c.Username)}
	}
	if s.cfg.Rule != nil {
		return s.cfg.Rule(r, c)
	}
	return nil
}

func (s *Site) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	if s.proxy == nil {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self' "+
			s.cfg.Issuer+"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
	}
}

func serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(siteCSS)
}

func (s *Site) serveApp(w http.ResponseWriter, r *http.Request) {
	if s.proxy != nil {
		if c, ok := ssohttp.ClaimsFrom(r.Context()); ok {
			var done func()
			r, done = s.conns.track(r, c, s.cfg.Client.RevokedClaims)
			defer done()
		}
		s.serveProxy(w, r)
		return
	}
	claims, ok := ssohttp.ClaimsFrom(r.Context())
	if !ok || r.URL.Path != "/" {
		// Without an upstream a public path has nothing to show.
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, http.StatusNotFound, "notfound.html", map[string]any{"Host": r.Host, "Path": r.URL.Path})
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	logout := s.cfg.Issuer + "/logout?return_to=" + url.QueryEscape(ssohttp.RequestURL(r, s.cfg.TrustedProxies))
	s.render(w, http.StatusOK, "page.html", map[string]any{
		"User": claims.Username, "Host": r.Host, "PerUser": s.cfg.Pattern.PerUser && !s.cfg.AnyUser,
		"Account": s.cfg.Issuer + "/", "Logout": logout,
		"Expires":   time.Unix(claims.Expiry, 0).UTC().Format("15:04:05 UTC"),
		"RefreshJS": ssohttp.RefreshScriptTag(ssohttp.RefreshScriptPath, claims, s.cfg.Now()),
	})
}

func (s *Site) render(w http.ResponseWriter, status int, name string, data any) {
	render(w, s.cfg.Log, status, name, data)
}

func render(w http.ResponseWriter, log *slog.Logger, status int, name string, data any) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, b.String())
}
