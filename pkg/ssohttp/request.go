package ssohttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sso/canopy/pkg/sso"

	"github.com/canopy-sso/canopy/pkg/trustedproxy"
)

// Authentication is what Authenticate found in a request.
type Authentication struct {
	// Claims are the verified claims; nil when verification failed.
	Claims *sso.Claims
	// Token is the token the claims came from ("" when none was verified).
	Token string
	// Bearer reports that the request carried "Authorization: Bearer"; its
	// token was then the only one considered.
	Bearer bool
	// Cookies is how many access cookies the request carried; with more
	// than one the response should expire them (the middleware does).
	Cookies int
}

// Authenticate is the one way every Canopy entry point (the net/http and
// echo middleware, proxy mode, forward auth) reads a request. An
// "Authorization: Bearer" token, the scheme in any case (RFC 7235), is used
// alone; any other scheme (an app's own Basic auth) is not Canopy's and is
// ignored, and the access cookies named cookieName are read instead: at most
// maxCookieTokens of them are verified, and different valid sessions among
// them are ErrAmbiguous. The result is never nil, also with an error.
func Authenticate(ctx context.Context, v *sso.Verifier, r *http.Request, cookieName string) (*Authentication, error) {
	vals, n := cookieValues(r.Header, cookieName, maxCookieTokens)
	a := &Authentication{Cookies: n}
	if tok, ok := bearerToken(r.Header); ok {
		a.Bearer = true
		if tok == "" {
			return a, fmt.Errorf("%w: empty bearer token", sso.ErrMalformed)
		}
		c, err := v.Verify(ctx, tok)
		if err == nil {
			a.Claims, a.Token = c, tok
		}
		return a, err
	}
	c, tok, err := chooseToken(ctx, v, vals, n)
	if err == nil {
		a.Claims, a.Token = c, tok
	}
	return a, err
}

// chooseToken picks the session among the access cookies of one request.
// Every token whose signature verified counts, valid or not: an expired or
// revoked token of another session beside a valid one is a cookie tossed
// by a sibling host, and the request is ErrAmbiguous rather than admitted
// as either session.
func chooseToken(ctx context.Context, v *sso.Verifier, vals []string, n int) (*sso.Claims, string, error) {
	switch len(vals) {
	case 0:
		return nil, "", sso.ErrMissing
	case 1:
		c, err := v.Verify(ctx, vals[0])
		return c, vals[0], err
	}
	var best *sso.Claims
	var bestTok, signedSID string
	var firstErr, expired, noKeys error
	for _, tok := range vals {
		c, err := v.Verify(ctx, tok)
		sid := ""
		var ce *sso.ClaimsError
		switch {
		case err == nil:
			sid = c.SessionID
		case errors.As(err, &ce) && ce.Claims != nil:
			sid = ce.Claims.SessionID
		}
		if sid != "" {
			if signedSID != "" && sid != signedSID {
				return nil, "", fmt.Errorf("%w: %d access cookies carry sessions %q and %q", ErrAmbiguous, n, signedSID, sid)
			}
			signedSID = sid
		}
		switch {
		case err == nil:
			if best == nil || c.Expiry > best.Expiry {
				best, bestTok = c, tok
			}
		case errors.Is(err, sso.ErrNoKeys):
			noKeys = err
		case errors.Is(err, sso.ErrExpired) && expired == nil:
			expired = err
		case firstErr == nil:
			firstErr = err
		}
	}
	switch {
	case best != nil:
		return best, bestTok, nil
	case noKeys != nil:
		return nil, "", noKeys
	case expired != nil:
		// An expired session is still a session: refresh it.
		return nil, "", expired
	}
	return nil, "", firstErr
}

// request is what the middleware works out about one request.
type request struct {
	nav    bool   // a browser navigation
	url    string // the URL the browser asked for, for return_to
	secure bool   // cookies we set must be Secure
}

// describe works out navigation, the request URL and cookie security.
func (m *middleware) describe(r *http.Request, site *SiteConfig) request {
	u := RequestURL(r, m.cfg.TrustedProxies)
	return request{
		nav:    isNavigation(r),
		url:    u,
		secure: strings.HasPrefix(u, "https:") || (site != nil && site.SecureCookies),
	}
}

// RequestURL is r's URL as the browser sees it: the scheme and host from
// X-Forwarded-Proto and X-Forwarded-Host when r comes straight from one of
// the trusted proxies, else from the connection and Host. Return URLs built
// from it (sign-out links, /refresh) then pass the issuer's validator
// behind a TLS-terminating proxy.
func RequestURL(r *http.Request, trusted []netip.Prefix) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trustedproxy.From(r, trusted) {
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
	return scheme + "://" + host + uri
}

func firstToken(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
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
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}
