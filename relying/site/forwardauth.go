package site

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/pkg/trustedproxy"
)

// AuthPath is the forward-auth endpoint for nginx auth_request, Traefik
// forwardAuth and Caddy forward_auth.
const AuthPath = "/.canopy/auth"

// HeaderLoginURL carries the login URL on a 401 from the forward-auth endpoint.
const HeaderLoginURL = "X-Canopy-Login-URL"

// forwardAuth answers 200 with the X-Canopy-* identity headers, 401 with the
// login URL in X-Canopy-Login-URL (with prompt=login when a rule wants a
// stronger or fresher sign-in), or 403. Never a redirect or another status:
// nginx's auth_request turns anything but 2xx, 401 and 403 into a 500.
func (s *Site) forwardAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	orig := s.originalURL(r)
	d := s.cfg.Client.Discovery()
	if d == nil {
		// The issuer has not been reached yet: nothing can be verified.
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a, err := s.cfg.Client.Authenticate(r)
	claims := a.Claims
	if err != nil {
		w.Header().Set(HeaderLoginURL, d.LoginURI+"?return_to="+url.QueryEscape(orig.String()))
		w.Header().Set("WWW-Authenticate", `Bearer realm="canopy"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := s.authorizeHost(orig.Host, r, claims); err != nil {
		var su *sso.StepUpError
		if errors.As(err, &su) {
			// A 401 sends the proxy's user to sign in again, as for no token.
			w.Header().Set(HeaderLoginURL, d.LoginURI+"?prompt=login&return_to="+url.QueryEscape(orig.String()))
			w.Header().Set("WWW-Authenticate", `Bearer realm="canopy", error="insufficient_user_authentication"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set(HeaderUser, claims.Username)
	w.Header().Set(HeaderSub, claims.Subject)
	w.Header().Set(HeaderSid, claims.SessionID)
	w.WriteHeader(http.StatusOK)
}

// originalURL is the URL the proxy is asking about: from X-Original-URL (nginx)
// or X-Forwarded-Proto/-Host/-Uri (Traefik, Caddy), believed only from
// trusted proxies; otherwise this request's own URL.
func (s *Site) originalURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: "/"}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if !trustedproxy.From(r, s.cfg.TrustedProxies) {
		return u
	}
	if raw := r.Header.Get("X-Original-URL"); raw != "" {
		if o, err := url.Parse(raw); err == nil && o.Host != "" && (o.Scheme == "http" || o.Scheme == "https") {
			return o
		}
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		u.Scheme = p
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		u.Host = h
	}
	if uri := r.Header.Get("X-Forwarded-Uri"); strings.HasPrefix(uri, "/") {
		if o, err := url.ParseRequestURI(uri); err == nil {
			u.Path, u.RawQuery = o.Path, o.RawQuery
		}
	}
	return u
}
