package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/config"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/returnurl"
	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// This file is the issuer's several root domains (--url given more than
// once): the request's host selects the domain, whose tokens carry its URL
// as iss and its cookie domain as aud. People sign in at the primary only;
// another domain's session is linked to a primary one by the hop (hop.go).

// domain is one root domain the issuer serves.
type domain struct {
	url, cookieDomain string
	host              string // the URL's host name, lowercase, without a port
	primary           bool
	// tag names the domain in its linked sessions' ids (store.LinkedSessionID).
	tag string
	// clientID is the internal first-party client through which the
	// domain's hop runs the code flow at the primary; "" on the primary.
	clientID string
	verifier *sso.Verifier
	returns  returnurl.Policy
}

// owns reports whether sid is a session of this domain: a root on the
// primary, a session linked under this domain's tag elsewhere.
func (d *domain) owns(sid string) bool {
	if d.primary {
		return store.SessionDomainTag(sid) == ""
	}
	return store.SessionDomainTag(sid) == d.tag
}

// internalClientPrefix begins the client_id of every other domain's
// internal client: "canopy-domain:" and its cookie domain.
const internalClientPrefix = "canopy-domain:"

// newDomains builds the domains of cfg, each with its verifier over the
// one key set.
func newDomains(cfg config.Config, ks sso.KeySet, now func() time.Time) ([]*domain, error) {
	var out []*domain
	for _, d := range cfg.Domains() {
		sum := sha256.Sum256([]byte(d.CookieDomain))
		dom := &domain{url: d.URL, cookieDomain: d.CookieDomain, primary: d.Primary,
			tag: base64.RawURLEncoding.EncodeToString(sum[:6]), returns: returnurl.Policy{Domain: d.CookieDomain, AllowHTTP: !cfg.Secure()}}
		if h, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(d.URL, "https://"), "http://")); err == nil {
			dom.host = strings.ToLower(h)
		} else {
			dom.host = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(d.URL, "https://"), "http://"))
		}
		if !d.Primary {
			dom.clientID = internalClientPrefix + d.CookieDomain
		}
		v, err := sso.NewVerifier(ks, sso.Config{Issuer: d.URL, Audience: d.CookieDomain, Leeway: -1,
			MaxTokenAge: config.MaxAccessTTL, CacheSize: 10_000, Now: now})
		if err != nil {
			return nil, err
		}
		dom.verifier = v
		out = append(out, dom)
	}
	return out, nil
}

// primary is the domain where people sign in.
func (s *Server) primary() *domain { return s.domains[0] }

// domainOf is the domain a request is for, by its host. A host that is
// none of the configured ones is served as the primary, as before there
// were several.
func (s *Server) domainOf(c echo.Context) *domain {
	if len(s.domains) == 1 {
		return s.domains[0]
	}
	host := c.Request().Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range s.domains {
		if d.host == host {
			return d
		}
	}
	return s.domains[0]
}

// domainByTag is the domain of a linked session's tag.
func (s *Server) domainByTag(tag string) *domain {
	for _, d := range s.domains[1:] {
		if d.tag == tag {
			return d
		}
	}
	return nil
}

// internalClient is the client of another domain's hop, made from the
// configuration (never from the stored row, which exists for the codes'
// foreign key); nil when id is not one.
func (s *Server) internalClient(id string) *store.Client {
	if !strings.HasPrefix(id, internalClientPrefix) {
		return nil
	}
	for _, d := range s.domains[1:] {
		if d.clientID == id {
			return &store.Client{ID: d.clientID, Name: d.clientID, Public: true,
				RedirectURIs: []string{d.url + pathHandover}, IDTokenAlg: wire.AlgRS256}
		}
	}
	return nil
}

// clientByID is a registered client, or another domain's internal one.
func (s *Server) clientByID(ctx context.Context, id string) (store.Client, error) {
	if c := s.internalClient(id); c != nil {
		return *c, nil
	}
	if strings.HasPrefix(id, internalClientPrefix) {
		return store.Client{}, store.ErrNotFound // a domain no longer configured
	}
	return s.store.ClientByID(ctx, id)
}

// ensureInternalClients stores a row for each other domain's internal
// client, which its codes reference; every instance may do it at once.
func (s *Server) ensureInternalClients(ctx context.Context) error {
	for _, d := range s.domains[1:] {
		c := s.internalClient(d.clientID)
		c.CreatedAt = s.now()
		err := s.store.CreateClient(ctx, *c)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("server: internal client of %s: %w", d.cookieDomain, err)
		}
	}
	return nil
}

// returnPolicies accept a return URL under any configured domain.
func (s *Server) cleanReturn(raw string) string {
	for _, d := range s.domains {
		if v, ok := d.returns.Check(raw); ok {
			return v
		}
	}
	return ""
}

// otherDomainPaths are what another domain's host serves itself; every
// other GET there goes to the primary, and every other method is refused.
func otherDomainServes(method, path string) bool {
	switch path {
	case wire.PathJWKS, "/.well-known/openid-configuration", wire.PathRevocation, wire.PathRevocationV2,
		wire.PathRevocationStream, "/healthz", "/readyz", wire.PathLogin, pathHandover:
		return method == http.MethodGet || method == http.MethodHead
	case wire.PathRefresh:
		return method == http.MethodGet || method == http.MethodPost || method == http.MethodOptions
	case wire.PathLogout:
		return method == http.MethodGet || method == http.MethodPost
	}
	return strings.HasPrefix(path, "/static/") && (method == http.MethodGet || method == http.MethodHead)
}

// domainGate keeps another domain's host to what it serves: the
// discovery, keys and feeds, refresh, sign-in (the hop), sign-out and the
// handover. Other pages (the account, sign-up, the OpenID Provider) are
// the primary's: a GET goes there, anything else is refused.
func (s *Server) domainGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(s.domains) == 1 {
			return next(c)
		}
		d := s.domainOf(c)
		req := c.Request()
		if d.primary || otherDomainServes(req.Method, req.URL.Path) {
			return next(c)
		}
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.Redirect(http.StatusSeeOther, s.primary().url+req.URL.RequestURI())
		}
		return echo.NewHTTPError(http.StatusNotFound, "Not found here: this is served at "+s.primary().url+".")
	}
}
