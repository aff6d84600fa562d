package ssohttp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"
)

func fuzzVerifier(t testing.TB) *sso.Verifier {
	ed, es := ssotest.FixedKeys(t)
	ks, err := sso.NewStaticKeySet(ed.JWK(), es.JWK())
	if err != nil {
		t.Fatal(err)
	}
	return newTestVerifier(t, ks, ssotest.NewClock())
}

// FuzzCookies feeds arbitrary Cookie headers and paths through cookie
// selection and the whole middleware: no panic, only the statuses the
// middleware can answer, and Set-Cookie headers that cannot inject headers.
func FuzzCookies(f *testing.F) {
	ed, _ := ssotest.FixedKeys(f)
	tok := ed.Mint(f, ssotest.ValidClaims())
	tok2 := ed.Mint(f, ssotest.With(ssotest.ValidClaims(), "sid", "s_2"))
	for _, s := range [][2]string{
		{"canopy=" + tok, "/"},
		{"canopy=" + tok + "; canopy=" + tok2, "/a/b/c"},
		{"canopy=" + tok + ";canopy=" + tok, "/a//b/"},
		{"canopy =x; Canopy=y;  canopy=z", "/%2F/x"},
		{"canopy-loop=2.1800000000; canopy=junk", "/a;b"},
		{";;;=;canopy", ""},
	} {
		f.Add(s[0], s[1])
	}
	v := fuzzVerifier(f)
	mw, err := NewMiddleware(v, MiddlewareConfig{Logger: ssotest.DiscardLogger(), Now: ssotest.NewClock().Now},
		SiteConfig{CookieName: "canopy", CookieDomain: ssotest.Audience, RefreshURL: refreshURL, LoginURL: loginURL})
	if err != nil {
		f.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClaimsFrom(r.Context()); !ok {
			panic("handler reached without claims")
		}
	}))
	f.Fuzz(func(t *testing.T, cookie, path string) {
		hdr := http.Header{"Cookie": {cookie}}
		vals, n := cookieValues(hdr, "canopy", maxCookieTokens)
		if n < len(vals) || len(vals) > maxCookieTokens {
			t.Fatalf("n %d, vals %d", n, len(vals))
		}
		for _, val := range vals {
			if !strings.Contains(cookie, "canopy="+val) {
				t.Fatalf("value %q not in %q", val, cookie)
			}
		}
		paths := cookiePaths(path)
		if len(paths) == 0 || paths[0] != "/" || len(paths) > maxExpirePaths {
			t.Fatalf("paths %q", paths)
		}
		for _, p := range paths[1:] {
			if !validCookiePath(p) || !strings.HasPrefix(path+"/", p) {
				t.Fatalf("path %q for %q", p, path)
			}
		}
		u, err := url.Parse("http://alice.domain.localhost" + path)
		if err != nil || u.Host != "alice.domain.localhost" {
			return
		}
		r := httptest.NewRequest("GET", "http://alice.domain.localhost/", nil)
		r.URL, r.RequestURI = u, u.RequestURI()
		r.Header = hdr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case 200, 303, 401:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		for _, sc := range rec.Result().Header.Values("Set-Cookie") {
			if strings.ContainsAny(sc, "\r\n") {
				t.Fatalf("Set-Cookie %q", sc)
			}
		}
	})
}
