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

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

//go:embed templates/*.html templates/*.css
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// Config is what the relying example needs.
type Config struct {
	Pattern        Pattern
	Issuer         string // issuer URL, for the account and sign-out links
	Client         *sso.Client
	Upstream       *url.URL // proxy mode when set
	ForwardToken   bool     // proxy mode: pass the access token to the app as Authorization: Bearer
	TrustedProxies []netip.Prefix
	// Rule, when set, is asked about every signed-in request after the
	// owner check (--require-group, --require-amr, --max-auth-age).
	Rule ssohttp.Rule
	Log  *slog.Logger
	Now  func() time.Time
}

// Site serves the relying example.
type Site struct {
	cfg   Config
	proxy *httputil.ReverseProxy
	conns *liveConns // proxied requests in flight, closed on revocation
	css   []byte
}

// New returns the example's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("site: no sso client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	css, err := files.ReadFile("templates/site.css")
	if err != nil {
		return nil, err
	}
	s := &Site{cfg: cfg, css: css}
	if cfg.Upstream != nil {
		s.proxy = s.newProxy(cfg.Upstream, cfg.Log)
		s.conns = newLiveConns(cfg.Now)
		cfg.Client.OnRevoke(s.conns.revoke)
	}
	protect, err := ssohttp.Middleware(cfg.Client, ssohttp.MiddlewareConfig{Authorize: s.authorize,
		TrustedProxies: cfg.TrustedProxies, Logger: cfg.Log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.canopy/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/.canopy/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !cfg.Client.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "no key set loaded yet: the issuer has not been reached")
			return
		}
		if err := cfg.Client.RevocationFeedError(); err != nil {
			// The issuer answers but its feed cannot be read whole:
			// revocations may be missed, so take no traffic.
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "revocation feed unreadable: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle(ssohttp.RefreshScriptPath, ssohttp.RefreshScriptHandler(cfg.Client))
	mux.HandleFunc(AuthPath, s.forwardAuth)
	mux.HandleFunc("/.canopy/site.css", s.serveCSS)
	mux.Handle("/", protect(http.HandlerFunc(s.serveApp)))
	return s.hosts(mux), nil
}

// authorize is the example's rule: a per-user host is its owner's alone
// (a plain 403: signing in again would not help), then the configured Rule.
func (s *Site) authorize(r *http.Request, c *sso.Claims) error {
	return s.authorizeHost(r.Host, r, c)
}

func (s *Site) authorizeHost(host string, r *http.Request, c *sso.Claims) error {
	label, ok := s.cfg.Pattern.Match(host)
	if s.cfg.Pattern.PerUser && (!ok || c.Username != label) {
		return &ssohttp.ForbiddenError{Message: fmt.Sprintf("This page belongs to %s. You are signed in as %s.", label, c.Username)}
	}
	if s.cfg.Rule != nil {
		return s.cfg.Rule(r, c)
	}
	return nil
}

// hosts answers 404 for any host outside the pattern, before any auth.
func (s *Site) hosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.headers(w)
		// Health checks and forward-auth arrive on whatever host the caller
		// used; forward-auth checks the original URL's host itself.
		if p := r.URL.Path; p == "/.canopy/healthz" || p == "/.canopy/readyz" || p == AuthPath {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := s.cfg.Pattern.Match(r.Host); !ok {
			w.Header().Set("Cache-Control", "no-store")
			s.render(w, http.StatusNotFound, "notfound.html", map[string]any{"Host": r.Host, "Pattern": s.cfg.Pattern.String()})
			return
		}
		next.ServeHTTP(w, r)
	})
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

func (s *Site) serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.css)
}

func (s *Site) serveApp(w http.ResponseWriter, r *http.Request) {
	if s.proxy != nil {
		if c, ok := ssohttp.ClaimsFrom(r.Context()); ok {
			var done func()
			r, done = s.conns.track(r, c, s.cfg.Client.RevokedClaims)
			defer done()
		}
		s.proxy.ServeHTTP(w, r)
		return
	}
	claims, _ := ssohttp.ClaimsFrom(r.Context())
	if r.URL.Path != "/" {
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, http.StatusNotFound, "notfound.html", map[string]any{"Host": r.Host, "Path": r.URL.Path})
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	logout := s.cfg.Issuer + "/logout?return_to=" + url.QueryEscape(ssohttp.RequestURL(r, s.cfg.TrustedProxies))
	s.render(w, http.StatusOK, "page.html", map[string]any{
		"User": claims.Username, "Host": r.Host, "PerUser": s.cfg.Pattern.PerUser,
		"Account": s.cfg.Issuer + "/", "Logout": logout,
		"Expires":   time.Unix(claims.Expiry, 0).UTC().Format("15:04:05 UTC"),
		"RefreshJS": ssohttp.RefreshScriptTag(ssohttp.RefreshScriptPath, claims, s.cfg.Now()),
	})
}

func (s *Site) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		s.cfg.Log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, b.String())
}
