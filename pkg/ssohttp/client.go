package ssohttp

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// Middleware returns net/http middleware that authenticates requests with
// the tokens of c's issuer, its SiteConfig from discovery (c.Current) and
// IssuerDown from c's health probe. Until discovery and the key set succeed
// it answers 503.
func Middleware(c *sso.Client, cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sso: middleware: %w", err)
	}
	cs := &clientSite{c: c}
	return newMiddleware(cfg, cs.current).wrap, nil
}

// AuthenticateWith reads r through Authenticate with c's current verifier
// and the access cookie's name from discovery; before discovery has
// succeeded it returns an error wrapping sso.ErrNoKeys.
func AuthenticateWith(c *sso.Client, r *http.Request) (*Authentication, error) {
	v, site, err := c.Current()
	if err != nil {
		return &Authentication{}, err
	}
	return Authenticate(r.Context(), v, r, site.CookieName)
}

// RefreshScriptHandler serves the refresh script with the refresh URL from
// c's discovery (503 before discovery has succeeded). Mount it at
// RefreshScriptPath.
func RefreshScriptHandler(c *sso.Client) http.Handler {
	var built atomic.Pointer[builtScript]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, site, err := c.Current()
		if err != nil {
			noStore(w)
			http.Error(w, "sign-in service unavailable", http.StatusServiceUnavailable)
			return
		}
		b := built.Load()
		if b == nil || b.from != site {
			b = &builtScript{from: site, h: RefreshScript(site.RefreshURL)}
			built.Store(b)
		}
		b.h.ServeHTTP(w, r)
	})
}

// builtScript is the script handler for one discovery, built once.
type builtScript struct {
	from *sso.Site
	h    http.Handler
}

// clientSite gives the middleware a Client's verifier and SiteConfig. A
// Client's Site never changes once discovery has succeeded, so the
// SiteConfig is built once, not per request.
type clientSite struct {
	c    *sso.Client
	last atomic.Pointer[builtSite]
}

type builtSite struct {
	from *sso.Site
	site SiteConfig
}

func (cs *clientSite) current() (*sso.Verifier, *SiteConfig, error) {
	v, s, err := cs.c.Current()
	if err != nil {
		return nil, nil, err
	}
	b := cs.last.Load()
	if b == nil || b.from != s {
		b = &builtSite{from: s, site: SiteConfig{
			CookieName:   s.CookieName,
			CookieDomain: s.CookieDomain,
			RefreshURL:   s.RefreshURL,
			LoginURL:     s.LoginURL,
			IssuerDown:   cs.c.IssuerDown,
		}}
		cs.last.Store(b)
	}
	return v, &b.site, nil
}
