package ssohttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// MiddlewareConfig configures the net/http and echo middleware. The zero value
// protects every request.
type MiddlewareConfig struct {
	// Skipper, when it returns true, lets a request through untouched (no
	// claims in its context).
	Skipper func(*http.Request) bool
	// Authorize, when set, is asked about every authenticated request (a
	// Rule: RequireGroup, RequireAMR, MaxAuthAge, AllOf…). An error refuses
	// it with 403: a page for a browser navigation (showing a
	// *ForbiddenError's Message), {"error":"forbidden"} otherwise. A
	// *StepUpError instead sends a browser to sign in again
	// ({login_uri}?prompt=login&return_to=<URL>) and answers an API request
	// with 401 "insufficient_user_authentication" (RFC 9470).
	Authorize func(r *http.Request, c *sso.Claims) error
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
// cookie; Middleware fills it from a Client's sso.Site.
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

// validate checks what sso.Site.Validate checks of a discovery document.
func (s SiteConfig) validate() error {
	return sso.Site{CookieName: s.CookieName, CookieDomain: s.CookieDomain, RefreshURL: s.RefreshURL, LoginURL: s.LoginURL}.Validate()
}

type authKey struct{}

// ClaimsFrom returns the claims the middleware put in a request's context.
// They are shared and read-only.
func ClaimsFrom(ctx context.Context) (*sso.Claims, bool) {
	if a, ok := AuthenticationFrom(ctx); ok {
		return a.Claims, true
	}
	return nil, false
}

// AuthenticationFrom returns what the middleware found in the request it
// admitted: the claims, the token they came from and how it was presented
// (a proxy uses it to pass the token on, or to strip it). Shared, read-only.
func AuthenticationFrom(ctx context.Context) (*Authentication, bool) {
	a, ok := ctx.Value(authKey{}).(*Authentication)
	return a, ok
}

// middleware is the one implementation behind the net/http and echo middleware.
type middleware struct {
	cfg  MiddlewareConfig
	site func() (*sso.Verifier, *SiteConfig, error)
	log  *slog.Logger
	now  func() time.Time
}

// NewMiddleware returns net/http middleware that authenticates requests with
// v, for programs that build their Verifier themselves. Middleware is the
// same with SiteConfig from a Client's discovery.
func NewMiddleware(v *sso.Verifier, cfg MiddlewareConfig, site SiteConfig) (func(http.Handler) http.Handler, error) {
	if v == nil {
		return nil, errors.New("sso: nil verifier")
	}
	if site.CookieDomain == "" {
		site.CookieDomain = v.Audience()
	}
	if err := errors.Join(cfg.validate(), site.validate()); err != nil {
		return nil, fmt.Errorf("sso: middleware: %w", err)
	}
	return newMiddleware(cfg, func() (*sso.Verifier, *SiteConfig, error) { return v, &site, nil }).wrap, nil
}

func newMiddleware(cfg MiddlewareConfig, site func() (*sso.Verifier, *SiteConfig, error)) *middleware {
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
	a, err := m.authenticate(w, r, v, site, req)
	switch {
	case err == nil:
		m.admit(w, r, next, site, a, req)
	case m.cfg.Optional:
		next.ServeHTTP(w, r)
	case errors.Is(err, sso.ErrNoKeys):
		m.unavailable(w, r, req, err, false)
	case req.nav:
		m.navigationRefused(w, r, v, site, req, err)
	default:
		m.unauthorized(w, r, site, req, err)
	}
}

// authenticate reads the request through Authenticate and expires the
// access cookies when there were several.
func (m *middleware) authenticate(w http.ResponseWriter, r *http.Request, v *sso.Verifier, site *SiteConfig, req request) (*Authentication, error) {
	a, err := Authenticate(r.Context(), v, r, site.CookieName)
	if a.Cookies > 1 {
		expireCookies(w, site.CookieName, site.CookieDomain, r.URL.EscapedPath(), req.secure || secureName(site.CookieName))
	}
	return a, err
}

// admit runs the handler for an authenticated request.
func (m *middleware) admit(w http.ResponseWriter, r *http.Request, next http.Handler, site *SiteConfig, a *Authentication, req request) {
	if _, ok := loopState(r); ok {
		clearLoop(w, req.secure)
	}
	if !m.authorize(w, r, site, req, a.Claims) {
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, a)))
}

// navigationRefused sends a browser to the issuer's /refresh, unless the
// issuer is down or the browser has already been round twice.
func (m *middleware) navigationRefused(w http.ResponseWriter, r *http.Request, v *sso.Verifier, site *SiteConfig, req request, err error) {
	if errors.Is(err, sso.ErrExpired) && site.IssuerDown != nil && site.IssuerDown() {
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
	m.log.Debug("sso: redirecting to refresh", "url", req.url, "reason", sso.Reason(err), "err", err)
	noStore(w)
	http.Redirect(w, r, withReturnTo(site.RefreshURL, req.url), http.StatusSeeOther)
}
