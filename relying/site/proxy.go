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

func (s *Site) forward(w http.ResponseWriter, r *http.Request, c *sso.Claims) {
	r = r.Clone(r.Context())
	stripCanopyHeaders(r.Header)
	r.Header.Set(HeaderUser, c.Username)
	r.Header.Set(HeaderSub, c.Subject)
	r.Header.Set(HeaderSid, c.SessionID)
	s.proxy.ServeHTTP(w, r)
}
