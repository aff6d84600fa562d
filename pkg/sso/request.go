package sso

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// request is what the middleware works out about one request.
type request struct {
	nav    bool   // a browser navigation
	url    string // the URL the browser asked for, for return_to
	secure bool   // cookies we set must be Secure
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
	return FromTrustedProxy(r, m.cfg.TrustedProxies)
}

// FromTrustedProxy reports whether r comes directly from one of the trusted
// proxies, whose X-Forwarded-* headers may then be believed.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range trusted {
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
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}
