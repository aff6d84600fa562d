package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// MiddlewareConfig configures the net/http and echo middleware. The zero value
// protects every request.
type MiddlewareConfig struct {
	// Skipper, when it returns true, lets a request through untouched (no
	// claims in its context).
	Skipper func(*http.Request) bool
	// Authorize, when set, is asked about every authenticated request; an
	// error refuses it with 403: a page for a browser navigation (showing a
	// *ForbiddenError's Message), {"error":"forbidden"} otherwise.
	Authorize func(r *http.Request, c *Claims) error
	// ErrorHandler, when set, renders every refusal (401, 403, the 500 loop
	// page, 503) instead of the built-in pages and JSON. It gets the status
	// the middleware would send and the cause; Cache-Control: no-store,
	// WWW-Authenticate and the cookie-clearing headers are already set.
	// Redirects to the issuer (303) are not refusals and never reach it.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, status int, err error)
	// Optional lets requests without a valid token through as anonymous
	// (ClaimsFrom reports false): for public pages. It never redirects.
	Optional bool
	// TrustedProxies are the peers whose X-Forwarded-Proto and
	// X-Forwarded-Host are believed when building return URLs.
	TrustedProxies []netip.Prefix
	// Logger gets refusals (Debug) and loops and outages (Warn); default
	// slog.Default().
	Logger *slog.Logger
	// Now is the redirect-loop guard's clock; default time.Now.
	Now func() time.Time
}

func (c MiddlewareConfig) validate() error {
	var errs []error
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("trusted proxy prefix %v is invalid", p))
		}
	}
	return errors.Join(errs...)
}

// SiteConfig is what the middleware needs to know about the issuer and the
// cookie; Client fills it from discovery.
type SiteConfig struct {
	// CookieName is the access cookie's exact name (canopy_cookie_name).
	CookieName string
	// CookieDomain is the Domain the access cookie is set with
	// (canopy_cookie_domain); default the verifier's audience.
	CookieDomain string
	// RefreshURL is the issuer's /refresh (canopy_refresh_uri).
	RefreshURL string
	// LoginURL is the issuer's /login (canopy_login_uri).
	LoginURL string
	// IssuerDown, when set, reports that the issuer is unreachable; an expired
	// session then gets a "sign-in service unavailable" page instead of a
	// redirect into it.
	IssuerDown func() bool
	// SecureCookies marks the cookies the middleware sets or clears Secure
	// even on plain-http requests (a TLS-terminating proxy that is not in
	// TrustedProxies). Names with a __Secure- or __Host- prefix always are.
	SecureCookies bool
}

func (s SiteConfig) validate() error {
	var errs []error
	if s.CookieName == "" {
		errs = append(errs, errors.New("cookie name is empty"))
	} else if (&http.Cookie{Name: s.CookieName}).String() == "" {
		errs = append(errs, fmt.Errorf("cookie name %q is not a valid cookie name", s.CookieName))
	}
	if s.CookieDomain == "" {
		errs = append(errs, errors.New("cookie domain is empty"))
	} else if !strings.Contains((&http.Cookie{Name: "x", Domain: s.CookieDomain}).String(), "Domain=") {
		errs = append(errs, fmt.Errorf("cookie domain %q is not a valid cookie domain", s.CookieDomain))
	}
	if !absoluteHTTP(s.RefreshURL) {
		errs = append(errs, fmt.Errorf("refresh URL %q is not an absolute http(s) URL", s.RefreshURL))
	}
	if !absoluteHTTP(s.LoginURL) {
		errs = append(errs, fmt.Errorf("login URL %q is not an absolute http(s) URL", s.LoginURL))
	}
	return errors.Join(errs...)
}

type claimsKey struct{}

// ClaimsFrom returns the claims the middleware put in a request's context.
// They are shared and read-only.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// middleware is the one implementation behind the net/http and echo middleware.
type middleware struct {
	cfg  MiddlewareConfig
	site func() (*Verifier, *SiteConfig, error)
	log  *slog.Logger
	now  func() time.Time
}

// NewMiddleware returns net/http middleware that authenticates requests with
// v, for programs that build their Verifier themselves. Client.Middleware is
// the same with SiteConfig from discovery.
func NewMiddleware(v *Verifier, cfg MiddlewareConfig, site SiteConfig) (func(http.Handler) http.Handler, error) {
	if v == nil {
		return nil, errors.New("sso: nil verifier")
	}
	if site.CookieDomain == "" {
		site.CookieDomain = v.Audience()
	}
	if err := errors.Join(cfg.validate(), site.validate()); err != nil {
		return nil, fmt.Errorf("sso: middleware: %w", err)
	}
	return newMiddleware(cfg, func() (*Verifier, *SiteConfig, error) { return v, &site, nil }).wrap, nil
}

// Middleware returns net/http middleware that authenticates requests with the
// issuer's tokens. Until discovery and the key set succeed it answers 503.
func (c *Client) Middleware(cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sso: middleware: %w", err)
	}
	return newMiddleware(cfg, c.current).wrap, nil
}

func newMiddleware(cfg MiddlewareConfig, site func() (*Verifier, *SiteConfig, error)) *middleware {
	m := &middleware{cfg: cfg, site: site, log: cfg.Logger, now: cfg.Now}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

func (m *middleware) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
}

// request is what the middleware works out about one request.
type request struct {
	nav    bool   // a browser navigation
	url    string // the URL the browser asked for, for return_to
	secure bool   // cookies we set must be Secure
}

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if m.cfg.Skipper != nil && m.cfg.Skipper(r) {
		next.ServeHTTP(w, r)
		return
	}
	v, site, err := m.site()
	if err != nil {
		if m.cfg.Optional {
			next.ServeHTTP(w, r)
			return
		}
		m.unavailable(w, r, m.describe(r, site), err, false)
		return
	}
	req := m.describe(r, site)
	claims, err := m.authenticate(w, r, v, site, req)
	switch {
	case err == nil:
		m.admit(w, r, next, claims, req)
	case m.cfg.Optional:
		next.ServeHTTP(w, r)
	case errors.Is(err, ErrNoKeys):
		m.unavailable(w, r, req, err, false)
	case req.nav:
		m.navigationRefused(w, r, v, site, req, err)
	default:
		m.unauthorized(w, r, site, req, err)
	}
}

// describe works out navigation, the request URL and cookie security.
func (m *middleware) describe(r *http.Request, site *SiteConfig) request {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if m.trustedPeer(r) {
		if p := firstToken(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstToken(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI()
	}
	return request{
		nav:    isNavigation(r),
		url:    scheme + "://" + host + uri,
		secure: scheme == "https" || (site != nil && site.SecureCookies),
	}
}

func firstToken(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

func (m *middleware) trustedPeer(r *http.Request) bool {
	if len(m.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range m.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// isNavigation is SPEC.md's definition: Sec-Fetch-Mode: navigate, or, with no
// Sec-Fetch-Mode, a GET or HEAD whose Accept includes text/html.
func isNavigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, line := range r.Header.Values("Accept") {
		for mr := range strings.SplitSeq(line, ",") {
			typ, params, _ := strings.Cut(mr, ";")
			if strings.EqualFold(strings.TrimSpace(typ), "text/html") && !zeroQ(params) {
				return true
			}
		}
	}
	return false
}

// zeroQ reports whether media-range parameters say q=0 ("not acceptable").
func zeroQ(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "0" || v == "0."
		}
	}
	return false
}

// authenticate finds the token (Bearer header, else the access cookie) and
// verifies it. Two or more access cookies are all verified and all expired in
// the response; different valid sessions among them are ErrAmbiguous.
func (m *middleware) authenticate(w http.ResponseWriter, r *http.Request, v *Verifier, site *SiteConfig, req request) (*Claims, error) {
	vals, n := cookieValues(r.Header, site.CookieName, maxCookieTokens)
	if n > 1 {
		expireCookies(w, site.CookieName, site.CookieDomain, r.URL.EscapedPath(), req.secure || secureName(site.CookieName))
	}
	if tok, ok := bearerToken(r.Header); ok {
		if tok == "" {
			return nil, errorf(ErrMalformed, "empty bearer token")
		}
		return v.Verify(r.Context(), tok)
	}
	return chooseToken(r.Context(), v, vals, n)
}

// chooseToken picks the session among the access cookies of one request.
func chooseToken(ctx context.Context, v *Verifier, vals []string, n int) (*Claims, error) {
	switch len(vals) {
	case 0:
		return nil, ErrMissing
	case 1:
		return v.Verify(ctx, vals[0])
	}
	var best *Claims
	var firstErr, expired, noKeys error
	for _, tok := range vals {
		c, err := v.Verify(ctx, tok)
		switch {
		case err == nil && best != nil && c.SessionID != best.SessionID:
			return nil, errorf(ErrAmbiguous, "%d access cookies carry sessions %q and %q", n, best.SessionID, c.SessionID)
		case err == nil:
			if best == nil || c.Expiry > best.Expiry {
				best = c
			}
		case errors.Is(err, ErrNoKeys):
			noKeys = err
		case errors.Is(err, ErrExpired) && expired == nil:
			expired = err
		case firstErr == nil:
			firstErr = err
		}
	}
	switch {
	case best != nil:
		return best, nil
	case noKeys != nil:
		return nil, noKeys
	case expired != nil:
		// An expired session is still a session: refresh it.
		return nil, expired
	}
	return nil, firstErr
}

// admit runs the handler for an authenticated request.
func (m *middleware) admit(w http.ResponseWriter, r *http.Request, next http.Handler, c *Claims, req request) {
	if _, ok := loopState(r); ok {
		clearLoop(w, req.secure)
	}
	if m.cfg.Authorize != nil {
		if err := m.cfg.Authorize(r, c); err != nil {
			m.forbidden(w, r, req, err)
			return
		}
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
}

// navigationRefused sends a browser to the issuer's /refresh, unless the
// issuer is down or the browser has already been round twice.
func (m *middleware) navigationRefused(w http.ResponseWriter, r *http.Request, v *Verifier, site *SiteConfig, req request, err error) {
	if errors.Is(err, ErrExpired) && site.IssuerDown != nil && site.IssuerDown() {
		m.unavailable(w, r, req, err, true)
		return
	}
	now := m.now()
	count, first := loopCount(r, now)
	if count >= loopRounds {
		m.loop(w, r, v, site, req, err, now)
		return
	}
	if count == 0 {
		first = now
	}
	setLoop(w, count+1, first, req.secure)
	m.log.Debug("sso: redirecting to refresh", "url", req.url, "reason", Reason(err), "err", err)
	noStore(w)
	http.Redirect(w, r, withReturnTo(site.RefreshURL, req.url), http.StatusSeeOther)
}

// unauthorized is the API answer: 401 with RFC 6750's WWW-Authenticate and
// SPEC.md's JSON body.
func (m *middleware) unauthorized(w http.ResponseWriter, r *http.Request, site *SiteConfig, req request, err error) {
	body := authError{Error: "unauthenticated", Reason: Reason(err), LoginURL: withReturnTo(site.LoginURL, req.url), RefreshURL: site.RefreshURL}
	challenge := `Bearer realm="canopy"`
	if !errors.Is(err, ErrMissing) {
		body.Error = "invalid_token"
		challenge += `, error="invalid_token"`
	}
	m.log.Debug("sso: unauthorized", "url", req.url, "reason", body.Reason, "err", err)
	w.Header().Set("WWW-Authenticate", challenge)
	m.refuse(w, r, http.StatusUnauthorized, err, func() { writeJSON(w, http.StatusUnauthorized, body) })
}

// authError is SPEC.md's 401 body, fields in its order.
type authError struct {
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	LoginURL   string `json:"login_url"`
	RefreshURL string `json:"refresh_url"`
}

func (m *middleware) forbidden(w http.ResponseWriter, r *http.Request, req request, err error) {
	m.log.Debug("sso: forbidden", "url", req.url, "err", err)
	m.refuse(w, r, http.StatusForbidden, err, func() {
		if !req.nav {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
			return
		}
		msg := "You do not have access to this page."
		if fe := (*ForbiddenError)(nil); errors.As(err, &fe) && fe.Message != "" {
			msg = fe.Message
		}
		renderPage(w, http.StatusForbidden, page{Title: "Access denied", Message: msg})
	})
}

// unavailable answers 503: no keys (or no discovery) yet, or, with
// issuerDown, an expired session while the issuer cannot refresh it.
func (m *middleware) unavailable(w http.ResponseWriter, r *http.Request, req request, err error, issuerDown bool) {
	m.log.Warn("sso: sign-in service unavailable", "url", req.url, "err", err)
	w.Header().Set("Retry-After", "10")
	m.refuse(w, r, http.StatusServiceUnavailable, err, func() {
		if !req.nav {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
			return
		}
		p := page{Title: "Sign-in service unavailable", Retry: req.url, AutoRetry: true,
			Message: "This service cannot check who you are yet: it has not reached the sign-in service. Try again shortly."}
		if issuerDown {
			p.Message = "The sign-in service is not answering right now. You are still signed in elsewhere; this page needs a fresh sign-in, which will work once the service is back. Try again shortly."
		}
		renderPage(w, http.StatusServiceUnavailable, p)
	})
}

// refuse sets no-store and renders with the ErrorHandler or the default.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, status int, err error, render func()) {
	noStore(w)
	if m.cfg.ErrorHandler != nil {
		m.cfg.ErrorHandler(w, r, status, err)
		return
	}
	render()
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// withReturnTo appends return_to=target to an issuer URL.
func withReturnTo(base, target string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "return_to=" + url.QueryEscape(target)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // URLs stay readable; the type is JSON, never HTML
	_ = enc.Encode(v)
}
