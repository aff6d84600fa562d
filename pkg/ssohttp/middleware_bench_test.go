package ssohttp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	"github.com/labstack/echo/v4"
)

// The middleware benchmarks serve one request with a valid access cookie
// through the net/http and the echo middleware around a trivial handler, and
// the same handler with no middleware at all ("none"): the difference is what
// authentication costs a relying service per request. "cold" has the token
// cache disabled (a signature check every time), "warm" is the cache hit
// that every request after a session's first one is.

var helloBody = []byte("hello, alice\n")

// discardWriter is the cheapest ResponseWriter, shared by every variant so
// that only the middleware differs.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// benchHandler returns the handler for one variant and the token its
// requests carry ("none" gets one too, so every request is the same bytes).
func benchHandler(b *testing.B, framework, mode string) (http.Handler, string) {
	k := ssotest.NewEdKey(b, "ed")
	tok := k.Mint(b, ssotest.ValidClaims())
	hello := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(helloBody)
	}
	var mw func(http.Handler) http.Handler
	if mode != "none" {
		cache := 0 // the default size
		if mode == "cold" {
			cache = -1
		}
		v, _ := benchSetup(b, k, cache)
		var err error
		mw, err = NewMiddleware(v, MiddlewareConfig{Logger: ssotest.DiscardLogger()}, SiteConfig{
			CookieName: "canopy", RefreshURL: ssotest.Issuer + "/refresh", LoginURL: ssotest.Issuer + "/login"})
		if err != nil {
			b.Fatal(err)
		}
	}
	if framework == "nethttp" {
		if mw == nil {
			return http.HandlerFunc(hello), tok
		}
		return mw(http.HandlerFunc(hello)), tok
	}
	e := echo.New()
	h := func(c echo.Context) error { return c.Blob(http.StatusOK, "text/plain; charset=utf-8", helloBody) }
	if mw == nil {
		e.GET("/", h)
	} else {
		e.GET("/", h, EchoWrap(mw))
	}
	return e, tok
}

func BenchmarkMiddleware(b *testing.B) {
	for _, fw := range []string{"nethttp", "echo"} {
		for _, mode := range []string{"none", "cold", "warm"} {
			b.Run(fw+"/"+mode, func(b *testing.B) {
				h, tok := benchHandler(b, fw, mode)
				req := httptest.NewRequest(http.MethodGet, "http://alice.domain.localhost/", nil)
				req.Header.Set("Cookie", "canopy="+tok)
				req.Header.Set("Accept", "text/html")
				req.Header.Set("Sec-Fetch-Mode", "navigate")
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.status = 0
					h.ServeHTTP(w, req)
					if w.status != 0 && w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}
