package ssohttp

import (
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestMiddlewareSecureCookieNames(t *testing.T) {
	f := newMWFixture(t)
	alice := f.token(t, "alice")
	cases := []struct {
		name, cookie string
		secureSite   bool
		tls          bool
		want         []string
	}{
		{"__Secure- prefix", "__Secure-canopy", false, false, expiry("__Secure-canopy", true, true)},
		{"__Host- prefix: host-only at / only", "__Host-canopy", false, false,
			[]string{"__Host-canopy=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=Lax"}},
		{"SecureCookies", "canopy", true, false, expiry("canopy", true, true)},
		{"TLS request", "canopy", false, true, expiry("canopy", true, true)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.site.CookieName = tc.cookie
			f.site.SecureCookies = tc.secureSite
			r := req("GET", "/a/b/c", cookieLine(tc.cookie+"="+alice+"; "+tc.cookie+"="+alice))
			if tc.tls {
				r = httptest.NewRequest("GET", "https://alice.domain.localhost/a/b/c", nil)
				r.Header.Set("Cookie", tc.cookie+"="+alice+"; "+tc.cookie+"="+alice)
			}
			rec := runners[0].serve(t, f, r)
			if rec.Code != 200 {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Result().Header.Values("Set-Cookie"); !slices.Equal(got, tc.want) {
				t.Errorf("Set-Cookie:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestCookiePaths(t *testing.T) {
	cases := []struct {
		path string
		want []string
	}{
		{"", []string{"/"}},
		{"/", []string{"/"}},
		{"/a", []string{"/", "/a", "/a/"}},
		{"/a/", []string{"/", "/a", "/a/"}},
		{"/a/b/c", []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/a/b/c/"}},
		{"//x", []string{"/", "//", "//x", "//x/"}},
		{"/a;b/c", []string{"/"}},
		{"/%3B/c", []string{"/", "/%3B", "/%3B/", "/%3B/c", "/%3B/c/"}},
	}
	for _, tc := range cases {
		if got := cookiePaths(tc.path); !slices.Equal(got, tc.want) {
			t.Errorf("cookiePaths(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if n := len(cookiePaths(strings.Repeat("/a", 100))); n != maxExpirePaths {
		t.Errorf("deep path: %d paths, want the cap %d", n, maxExpirePaths)
	}
}

func TestMiddlewareTrustedProxies(t *testing.T) {
	f := newMWFixture(t)
	f.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name, remote string
		want         string
	}{
		{"trusted", "10.1.2.3:4444", "https%3A%2F%2Fbob.domain.localhost%2Fx"},
		{"trusted IPv4-mapped", "[::ffff:10.1.2.3]:4444", "https%3A%2F%2Fbob.domain.localhost%2Fx"},
		{"untrusted", "192.0.2.1:4444", "http%3A%2F%2Falice.domain.localhost%3A8081%2Fx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req("GET", "/x", browser(), header("X-Forwarded-Proto", "https, http"), header("X-Forwarded-Host", "bob.domain.localhost"))
			r.RemoteAddr = tc.remote
			rec := runners[0].serve(t, f, r)
			if got, want := rec.Header().Get("Location"), refreshURL+"?return_to="+tc.want; got != want {
				t.Fatalf("Location %q, want %q", got, want)
			}
			secure := strings.Contains(rec.Header().Get("Set-Cookie"), "Secure")
			if secure != strings.HasPrefix(tc.want, "https") {
				t.Fatalf("loop cookie Secure=%v for %s", secure, tc.want)
			}
		})
	}
}
