package ssohttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"
)

const (
	refreshURL = "http://domain.localhost:8080/refresh"
	loginURL   = "http://domain.localhost:8080/login"
)

// mwFixture is one relying host with a verifier, keys and an injected clock.
type mwFixture struct {
	key        *ssotest.Key
	clk        *ssotest.Clock
	verifier   *sso.Verifier
	issuerDown atomic.Bool
	site       SiteConfig
	cfg        MiddlewareConfig
}

func newMWFixture(t *testing.T) *mwFixture {
	f := &mwFixture{key: ssotest.NewEdKey(t, "ed1"), clk: ssotest.NewClock()}
	ks, err := sso.NewStaticKeySet(f.key.JWK())
	if err != nil {
		t.Fatal(err)
	}
	f.verifier = newTestVerifier(t, ks, f.clk)
	f.site = SiteConfig{
		CookieName: "canopy", CookieDomain: ssotest.Audience, RefreshURL: refreshURL, LoginURL: loginURL,
		IssuerDown: f.issuerDown.Load,
	}
	f.cfg = MiddlewareConfig{Authorize: ownerOnly, Now: f.clk.Now, Logger: ssotest.DiscardLogger()}
	return f
}

// ownerOnly is the relying example's rule: {username}.domain is its owner's.
func ownerOnly(r *http.Request, c *sso.Claims) error {
	label, _, _ := strings.Cut(r.Host, ".")
	if label != c.Username {
		return &ForbiddenError{Message: "This page belongs to " + label + "."}
	}
	return nil
}

// token mints a token for user at the fixture's epoch, with overrides.
func (f *mwFixture) token(t *testing.T, user string, kv ...any) string {
	return f.key.Mint(t, ssotest.With(ssotest.ValidClaims(), append([]any{"preferred_username", user, "sub", "u_" + user, "sid", "s_" + user}, kv...)...))
}

// runner serves one request through net/http or echo.
type runner struct {
	name  string
	serve func(t *testing.T, f *mwFixture, r *http.Request) *httptest.ResponseRecorder
}

var runners = []runner{
	{"net/http", func(t *testing.T, f *mwFixture, r *http.Request) *httptest.ResponseRecorder {
		mw, err := NewMiddleware(f.verifier, f.cfg, f.site)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := ClaimsFrom(r.Context())
			greet(w, c, ok)
		})).ServeHTTP(rec, r)
		return rec
	}},
	{"echo", func(t *testing.T, f *mwFixture, r *http.Request) *httptest.ResponseRecorder {
		mw, err := NewMiddleware(f.verifier, f.cfg, f.site)
		if err != nil {
			t.Fatal(err)
		}
		e := echo.New()
		e.Use(EchoWrap(mw))
		e.Any("/*", func(c echo.Context) error {
			cl, ok := ClaimsFrom(c.Request().Context())
			greet(c.Response(), cl, ok)
			return nil
		})
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, r)
		return rec
	}},
}

func greet(w http.ResponseWriter, c *sso.Claims, ok bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		_, _ = io.WriteString(w, "hello stranger")
		return
	}
	_, _ = io.WriteString(w, "hello "+c.Username)
}

// req builds a request to alice's host; opts add headers and cookies.
func req(method, target string, opts ...func(*http.Request)) *http.Request {
	r := httptest.NewRequest(method, "http://alice.domain.localhost:8081"+target, nil)
	r.RemoteAddr = "192.0.2.1:5555"
	for _, o := range opts {
		o(r)
	}
	return r
}

func header(k, v string) func(*http.Request)  { return func(r *http.Request) { r.Header.Add(k, v) } }
func cookieLine(v string) func(*http.Request) { return header("Cookie", v) }
func browser() func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
	}
}

const returnAliceAB = "http%3A%2F%2Falice.domain.localhost%3A8081%2Fa%2Fb%3Fx%3D1%26y%3D2"

// expiry lists the Set-Cookie headers that clear name on /a/b/c.
func expiry(name string, domain bool, secure bool) []string {
	var out []string
	attrs := "; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly"
	if secure {
		attrs += "; Secure"
	}
	attrs += "; SameSite=Lax"
	for _, p := range []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/a/b/c/"} {
		if domain {
			out = append(out, name+"=; Path="+p+"; Domain=domain.localhost"+attrs)
		}
		out = append(out, name+"=; Path="+p+attrs)
	}
	return out
}

func TestMiddleware(t *testing.T) {
	for _, run := range runners {
		t.Run(run.name, func(t *testing.T) { testMiddleware(t, run) })
	}
}

func testMiddleware(t *testing.T, run runner) {
	f := newMWFixture(t)
	now := ssotest.Epoch.Unix()
	alice := f.token(t, "alice")
	alice2 := f.token(t, "alice", "jti", "j_other") // same session, another token
	aliceOtherSession := f.token(t, "alice", "sid", "s_2")
	bob := f.token(t, "bob")
	expired := f.token(t, "alice", "iat", now-400, "nbf", now-400, "exp", now-100)
	revoked := f.token(t, "alice", "sid", "s_revoked")
	forged := ssotest.NewEdKey(t, "ed1").Mint(t, ssotest.ValidClaims())
	loop1 := "canopy-loop=1." + ssotest.Itoa(now) + "; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
	body401 := func(errName, reason, target string) string {
		return `{"error":"` + errName + `","reason":"` + reason + `","login_url":"` + loginURL + `?return_to=` + target +
			`","refresh_url":"` + refreshURL + `"}` + "\n"
	}
	returnABC := "http%3A%2F%2Falice.domain.localhost%3A8081%2Fa%2Fb%2Fc"

	cases := []struct {
		name       string
		req        *http.Request
		down       bool
		status     int
		location   string
		challenge  string
		body       string // exact, or for HTML a substring
		setCookies []string
	}{
		{name: "owner navigation", req: req("GET", "/", browser(), cookieLine("canopy="+alice)), status: 200, body: "hello alice"},
		{name: "bearer", req: req("GET", "/api", header("Authorization", "Bearer "+alice)), status: 200, body: "hello alice"},
		{name: "bearer scheme any case", req: req("GET", "/api", header("Authorization", "bEARER "+alice)), status: 200, body: "hello alice"},
		{name: "bearer wins over cookie", req: req("GET", "/api", header("Authorization", "Bearer "+forged), cookieLine("canopy="+alice)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "signature", "http%3A%2F%2Falice.domain.localhost%3A8081%2Fapi")},
		{name: "basic auth is not ours", req: req("GET", "/api", header("Authorization", "Basic YTpi"), cookieLine("canopy="+alice)), status: 200, body: "hello alice"},
		{name: "empty bearer", req: req("GET", "/api", header("Authorization", "Bearer ")),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "malformed", "http%3A%2F%2Falice.domain.localhost%3A8081%2Fapi")},
		{name: "anonymous navigation", req: req("GET", "/a/b?x=1&y=2", browser()),
			status: 303, location: refreshURL + "?return_to=" + returnAliceAB, setCookies: []string{loop1}},
		{name: "anonymous navigation by Accept", req: req("GET", "/a/b?x=1&y=2", header("Accept", "text/html")),
			status: 303, location: refreshURL + "?return_to=" + returnAliceAB, setCookies: []string{loop1}},
		{name: "anonymous HEAD navigation", req: req("HEAD", "/a/b?x=1&y=2", header("Accept", "text/html")),
			status: 303, location: refreshURL + "?return_to=" + returnAliceAB, setCookies: []string{loop1}},
		{name: "expired navigation", req: req("GET", "/a/b?x=1&y=2", browser(), cookieLine("canopy="+expired)),
			status: 303, location: refreshURL + "?return_to=" + returnAliceAB, setCookies: []string{loop1}},
		{name: "navigate wins over method", req: req("POST", "/a/b?x=1&y=2", header("Sec-Fetch-Mode", "navigate")),
			status: 303, location: refreshURL + "?return_to=" + returnAliceAB, setCookies: []string{loop1}},
		{name: "Sec-Fetch-Mode cors wins over Accept", req: req("GET", "/a/b?x=1&y=2", header("Sec-Fetch-Mode", "cors"), header("Accept", "text/html")),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "POST accepting HTML is no navigation", req: req("POST", "/a/b?x=1&y=2", header("Accept", "text/html")),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "text/html;q=0", req: req("GET", "/a/b?x=1&y=2", header("Accept", "text/html;q=0, application/json")),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "curl", req: req("GET", "/a/b?x=1&y=2", header("Accept", "*/*")),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "expired API", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy="+expired)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "expired", returnAliceAB)},
		{name: "forged API", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy="+forged)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "signature", returnAliceAB)},
		{name: "garbage API", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy=garbage")),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "malformed", returnAliceAB)},
		{name: "revoked API", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy="+revoked)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "revoked", returnAliceAB)},
		{name: "cookie name case", req: req("GET", "/a/b?x=1&y=2", cookieLine("Canopy="+alice)),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "cookie name with trailing space", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy ="+alice)),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "cookie name prefix", req: req("GET", "/a/b?x=1&y=2", cookieLine("canopy-refresh="+alice)),
			status: 401, challenge: `Bearer realm="canopy"`, body: body401("unauthenticated", "missing", returnAliceAB)},
		{name: "cookie among others", req: req("GET", "/", cookieLine("a=b; canopy="+alice+"; c=d")), status: 200, body: "hello alice"},
		{name: "other user navigation", req: req("GET", "/", browser(), cookieLine("canopy="+bob)), status: 403, body: "This page belongs to alice."},
		{name: "other user API", req: req("GET", "/", cookieLine("canopy="+bob)), status: 403, body: `{"error":"forbidden"}` + "\n"},
		{name: "two cookies, one session", req: req("GET", "/a/b/c", cookieLine("canopy="+alice+"; canopy="+alice2)),
			status: 200, body: "hello alice", setCookies: expiry("canopy", true, false)},
		{name: "two cookie headers, one session", req: req("GET", "/a/b/c", cookieLine("canopy="+alice), cookieLine("canopy="+alice2)),
			status: 200, body: "hello alice", setCookies: expiry("canopy", true, false)},
		{name: "two cookies, two sessions, API", req: req("GET", "/a/b/c", cookieLine("canopy="+alice+"; canopy="+aliceOtherSession)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "malformed", returnABC),
			setCookies: expiry("canopy", true, false)},
		{name: "two cookies, two sessions, navigation", req: req("GET", "/a/b/c", browser(), cookieLine("canopy="+alice+"; canopy="+bob)),
			status: 303, location: refreshURL + "?return_to=" + returnABC, setCookies: append(expiry("canopy", true, false), loop1)},
		{name: "two cookies, one invalid", req: req("GET", "/a/b/c", cookieLine("canopy="+forged+"; canopy="+alice)),
			status: 200, body: "hello alice", setCookies: expiry("canopy", true, false)},
		// A signed token of another session, even expired, makes the request
		// ambiguous: it is no longer admitted as the valid one's session.
		{name: "two cookies, one expired of another session", req: req("GET", "/a/b/c", cookieLine("canopy="+expired+"; canopy="+bob)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "malformed", returnABC),
			setCookies: expiry("canopy", true, false)},
		{name: "two cookies, none valid", req: req("GET", "/a/b/c", cookieLine("canopy=junk; canopy="+expired)),
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`, body: body401("invalid_token", "expired", returnABC),
			setCookies: expiry("canopy", true, false)},
		{name: "issuer down, expired navigation", req: req("GET", "/", browser(), cookieLine("canopy="+expired)), down: true,
			status: 503, body: "You are still signed in elsewhere"},
		{name: "issuer down, expired API", req: req("GET", "/", cookieLine("canopy="+expired)), down: true,
			status: 401, challenge: `Bearer realm="canopy", error="invalid_token"`,
			body: body401("invalid_token", "expired", "http%3A%2F%2Falice.domain.localhost%3A8081%2F")},
		{name: "issuer down, anonymous navigation", req: req("GET", "/", browser()), down: true,
			status: 303, location: refreshURL + "?return_to=http%3A%2F%2Falice.domain.localhost%3A8081%2F", setCookies: []string{loop1}},
		{name: "issuer down, valid token", req: req("GET", "/", browser(), cookieLine("canopy="+alice)), down: true, status: 200, body: "hello alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.issuerDown.Store(tc.down)
			rec := run.serve(t, f, tc.req)
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tc.status, rec.Body.String())
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q\nwant     %q", got, tc.location)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.status != 200 && res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", res.Header.Get("Cache-Control"))
			}
			body := rec.Body.String()
			switch ct := res.Header.Get("Content-Type"); {
			case strings.HasPrefix(ct, "text/html"):
				if !strings.Contains(body, tc.body) {
					t.Errorf("page does not say %q:\n%s", tc.body, body)
				}
			case tc.status == 303:
			default:
				if body != tc.body {
					t.Errorf("body %q\nwant %q", body, tc.body)
				}
				if tc.status == 401 || tc.status == 403 {
					if ct != "application/json" {
						t.Errorf("Content-Type %q", ct)
					}
				}
			}
			if got := res.Header.Values("Set-Cookie"); !slices.Equal(got, tc.setCookies) {
				t.Errorf("Set-Cookie:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.setCookies, "\n"))
			}
		})
	}
}

func TestMiddlewareOptionalAndSkipper(t *testing.T) {
	f := newMWFixture(t)
	f.cfg.Optional = true
	f.cfg.Authorize = nil
	for _, run := range runners {
		t.Run(run.name, func(t *testing.T) {
			for _, r := range []*http.Request{req("GET", "/", browser()), req("GET", "/", cookieLine("canopy=junk"))} {
				if rec := run.serve(t, f, r); rec.Code != 200 || rec.Body.String() != "hello stranger" {
					t.Fatalf("optional: %d %q", rec.Code, rec.Body.String())
				}
			}
			if rec := run.serve(t, f, req("GET", "/", cookieLine("canopy="+f.token(t, "bob")))); rec.Body.String() != "hello bob" {
				t.Fatalf("optional with a token: %q", rec.Body.String())
			}
		})
	}
	f = newMWFixture(t)
	f.cfg.Skipper = func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/public/") }
	for _, run := range runners {
		if rec := run.serve(t, f, req("GET", "/public/x")); rec.Code != 200 || rec.Body.String() != "hello stranger" {
			t.Fatalf("%s skipped: %d %q", run.name, rec.Code, rec.Body.String())
		}
		if rec := run.serve(t, f, req("GET", "/private")); rec.Code != 401 {
			t.Fatalf("%s not skipped: %d", run.name, rec.Code)
		}
	}
}

func TestMiddlewareErrorHandler(t *testing.T) {
	f := newMWFixture(t)
	var gotStatus int
	var gotErr error
	f.cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, status int, err error) {
		gotStatus, gotErr = status, err
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "custom")
	}
	for _, run := range runners {
		rec := run.serve(t, f, req("GET", "/", cookieLine("canopy="+f.token(t, "bob"))))
		if rec.Code != 403 || rec.Body.String() != "custom" || gotStatus != 403 || !errors.Is(gotErr, ErrForbidden) {
			t.Fatalf("%s: %d %q %d %v", run.name, rec.Code, rec.Body.String(), gotStatus, gotErr)
		}
		rec = run.serve(t, f, req("GET", "/"))
		if rec.Code != 401 || gotStatus != 401 || !errors.Is(gotErr, sso.ErrMissing) || rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%s: %d %d %v", run.name, rec.Code, gotStatus, gotErr)
		}
	}
}

// noKeys is a key set that has never loaded.
type noKeys struct{}

func (noKeys) Key(context.Context, string) (*jose.JSONWebKey, error) { return nil, sso.ErrNoKeys }

func TestMiddlewareNoKeys(t *testing.T) {
	f := newMWFixture(t)
	f.verifier = newTestVerifier(t, noKeys{}, f.clk)
	tok := f.token(t, "alice")
	for _, run := range runners {
		rec := run.serve(t, f, req("GET", "/", browser(), cookieLine("canopy="+tok)))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "Sign-in service unavailable") || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s navigation: %d %q", run.name, rec.Code, rec.Body.String())
		}
		rec = run.serve(t, f, req("GET", "/", cookieLine("canopy="+tok)))
		if rec.Code != 503 || rec.Body.String() != `{"error":"unavailable"}`+"\n" {
			t.Fatalf("%s API: %d %q", run.name, rec.Code, rec.Body.String())
		}
	}
}

func TestNewMiddlewareValidates(t *testing.T) {
	f := newMWFixture(t)
	_, err := NewMiddleware(f.verifier, MiddlewareConfig{TrustedProxies: []netip.Prefix{{}}},
		SiteConfig{CookieName: "bad name", CookieDomain: "bad domain", RefreshURL: "/refresh", LoginURL: "javascript:x"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"trusted proxy", "cookie name", "cookie domain", "refresh URL", "login URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewMiddleware(nil, MiddlewareConfig{}, f.site); err == nil {
		t.Error("nil verifier accepted")
	}
}
