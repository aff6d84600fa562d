package site

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/canopy-sso/canopy/pkg/ssohttp"
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
// nginx's auth_request turns anything but 2xx, 401 and 403 into a 500 (a
// 404 too, so a host no entry serves gets 403). The original URL's host
// picks the policy entry.
func (rt *Router) forwardAuth(w http.ResponseWriter, r *http.Request, rs *routes) {
	w.Header().Set("Cache-Control", "no-store")
	orig, err := originalURL(r, rt.cfg.TrustedProxies)
	if err != nil {
		// 403, not 400: nginx's auth_request turns a 400 into a 500.
		rt.cfg.Log.Warn("forward auth: refused original URL", "err", err)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	s, ok := rs.match(orig.Host)
	if !ok {
		rt.cfg.Log.Info("forward auth: no policy entry for the host", "host", orig.Host)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	s.forwardAuth(w, r, orig)
}

// forwardAuth answers for orig, a URL of one of s's hosts. A public path
// gets 200 with the identity headers present and empty: a proxy that copies
// them (Caddy 2.6's copy_headers writes its placeholder's own text for a
// missing one) then overwrites whatever the client sent with nothing.
func (s *Site) forwardAuth(w http.ResponseWriter, r *http.Request, orig *url.URL) {
	if s.cfg.Public != nil && s.cfg.Public(orig.Path) {
		for _, h := range []string{HeaderUser, HeaderSub, HeaderSid} {
			w.Header()[h] = []string{""}
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	d := s.cfg.Client.Discovery()
	if d == nil {
		// The issuer has not been reached yet: nothing can be verified.
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a, err := ssohttp.AuthenticateWith(s.cfg.Client, r)
	claims := a.Claims
	if err != nil {
		w.Header().Set(HeaderLoginURL, d.LoginURI+"?return_to="+url.QueryEscape(orig.String()))
		w.Header().Set("WWW-Authenticate", `Bearer realm="canopy"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := s.authorizeHost(orig.Host, r, claims); err != nil {
		var su *ssohttp.StepUpError
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

// originalURL is the URL the proxy is asking about: from X-Original-URL
// (nginx) or X-Forwarded-Proto/-Host/-Uri (Traefik, Caddy), believed only
// from trusted proxies; otherwise this request's own URL. Its host decides
// whose page it is, so it must be a plain DNS name (and port) that every
// reader parses alike: userinfo ("bob.domain.com@alice.domain.com", which
// nginx copies from a Host header into $http_host), a backslash, a percent
// sign or any other character is refused rather than interpreted, and an
// X-Forwarded-Host sent beside X-Original-URL must name the same host.
func originalURL(r *http.Request, trusted []netip.Prefix) (*url.URL, error) {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: "/"}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if trustedproxy.From(r, trusted) {
		fwdHost := r.Header.Get("X-Forwarded-Host")
		if raw := r.Header.Get("X-Original-URL"); raw != "" {
			o, err := url.Parse(raw)
			if err != nil || (o.Scheme != "http" && o.Scheme != "https") || o.Opaque != "" {
				return nil, fmt.Errorf("X-Original-URL %q is not an absolute http(s) URL", raw)
			}
			if o.User != nil {
				return nil, fmt.Errorf("X-Original-URL %q carries userinfo", raw)
			}
			if fwdHost != "" && !strings.EqualFold(fwdHost, o.Host) {
				return nil, fmt.Errorf("X-Forwarded-Host %q disagrees with X-Original-URL %q", fwdHost, raw)
			}
			u = o
		} else {
			if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
				u.Scheme = p
			}
			if fwdHost != "" {
				u.Host = fwdHost
			}
			if uri := r.Header.Get("X-Forwarded-Uri"); strings.HasPrefix(uri, "/") {
				if o, err := url.ParseRequestURI(uri); err == nil {
					u.Path, u.RawQuery = o.Path, o.RawQuery
				}
			}
		}
	}
	if !plainHost(u.Host) {
		return nil, fmt.Errorf("host %q is not a plain DNS name", u.Host)
	}
	return u, nil
}

// plainHost reports whether hostport is a DNS name of letters, digits,
// hyphens and dots, with an optional numeric port, and nothing else.
func plainHost(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	} else if port == "" {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if host == "" || len(host) > 253 || strings.HasSuffix(host, ".") {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
