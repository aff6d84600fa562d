package site

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// Headers set on proxied requests; any incoming X-Canopy-* header is removed
// first, so a client can never spoof them.
const (
	HeaderUser = "X-Canopy-User"
	HeaderSub  = "X-Canopy-Sub"
	HeaderSid  = "X-Canopy-Sid"
)

func newProxy(upstream *url.URL, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("upstream unreachable", "upstream", upstream.String(), "err", err)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<!doctype html><title>Bad gateway</title><h1>The application is not answering</h1><p>Please try again in a moment.</p>\n"))
		},
	}
}

// stripCanopyHeaders removes every X-Canopy-* header, whatever its case.
func stripCanopyHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-canopy-") {
			delete(h, k)
		}
	}
}

// forward sends a verified request to the upstream app with the identity
// headers. The access token itself (cookie or Authorization: Bearer) is
// removed: the app gets it only as "Authorization: Bearer" with
// ForwardToken, so an app that logs headers cannot leak a token it never
// asked for. The middleware has read the request through sso.Authenticate;
// its result says which token it chose and how it came.
func (s *Site) forward(w http.ResponseWriter, r *http.Request) {
	a, _ := sso.AuthenticationFrom(r.Context())
	c := a.Claims
	r = r.Clone(r.Context())
	if d := s.cfg.Client.Discovery(); d != nil {
		dropCookie(r, d.CookieName)
	}
	if a.Bearer {
		r.Header.Del("Authorization")
	}
	if s.cfg.ForwardToken && a.Token != "" {
		r.Header.Set("Authorization", "Bearer "+a.Token)
	}
	stripCanopyHeaders(r.Header)
	r.Header.Set(HeaderUser, c.Username)
	r.Header.Set(HeaderSub, c.Subject)
	r.Header.Set(HeaderSid, c.SessionID)
	s.proxy.ServeHTTP(w, r)
}

// dropCookie removes every cookie called name from the request's Cookie headers.
func dropCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}
