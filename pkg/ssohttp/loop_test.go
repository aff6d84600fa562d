package ssohttp

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// loopCookieFrom returns the canopy-loop cookie a response set, if any.
func loopCookieFrom(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == loopCookie {
			return c
		}
	}
	return nil
}

func TestRedirectLoopGuard(t *testing.T) {
	f := newMWFixture(t)
	now := ssotest.Epoch.Unix()
	other := ssotest.NewEdKey(t, "rotated-away")
	cases := []struct {
		name  string
		token func(t *testing.T) string // what the issuer keeps sending back ("" = no cookie reaches us)
		cause string
	}{
		{"cookie does not reach this host", func(*testing.T) string { return "" },
			"Cookie domain mismatch: the sign-in service's cookie does not reach this host (alice.domain.localhost). It is set for domain.localhost"},
		{"clock skew", func(t *testing.T) string { return f.token(t, "alice", "iat", now-400, "nbf", now-400, "exp", now-100) },
			"Clock skew: the token was issued at 2027-01-15T07:53:20Z and expires at 2027-01-15T07:58:20Z by the sign-in service's clock, but this server's clock reads 2027-01-15T08:00:00Z (6m40s after the issue time)"},
		{"clock skew, issued in the future", func(t *testing.T) string { return f.token(t, "alice", "iat", now+120, "nbf", now+120, "exp", now+420) },
			"Clock skew: the token was issued at 2027-01-15T08:02:00Z by the sign-in service's clock, which is in the future"},
		{"unknown key", func(t *testing.T) string { return other.Mint(t, ssotest.ValidClaims()) },
			"Unknown key: the token is signed with a key that is not in the sign-in service's key set"},
		{"wrong audience", func(t *testing.T) string { return f.token(t, "alice", "aud", "example.localhost") },
			`Cookie domain mismatch (token for "example.localhost", this service expects "domain.localhost").`},
		{"wrong issuer", func(t *testing.T) string { return f.token(t, "alice", "iss", "http://other.localhost:8080") },
			`Issuer mismatch (token from "http://other.localhost:8080", this service expects "http://domain.localhost:8080").`},
	}
	for _, run := range runners {
		for _, tc := range cases {
			t.Run(run.name+"/"+tc.name, func(t *testing.T) {
				tok := tc.token(t)
				var loop *http.Cookie
				for round := 1; round <= 3; round++ {
					r := req("GET", "/page", browser())
					if tok != "" {
						r.AddCookie(&http.Cookie{Name: "canopy", Value: tok})
					}
					if loop != nil {
						r.AddCookie(loop)
					}
					rec := run.serve(t, f, r)
					res := rec.Result()
					if round < 3 {
						loop = loopCookieFrom(t, res)
						if res.StatusCode != 303 || loop == nil || !strings.HasPrefix(loop.Value, string(rune('0'+round))+".") || loop.MaxAge != 60 || !loop.HttpOnly {
							t.Fatalf("round %d: status %d, loop cookie %+v", round, res.StatusCode, loop)
						}
						continue
					}
					body := rec.Body.String()
					if res.StatusCode != 500 || !strings.Contains(body, "Sign-in keeps failing") {
						t.Fatalf("round 3: status %d, body %s", res.StatusCode, body)
					}
					if !strings.Contains(htmlUnescape(body), tc.cause) {
						t.Fatalf("page does not say %q:\n%s", tc.cause, htmlUnescape(body))
					}
					if c := loopCookieFrom(t, res); c == nil || c.MaxAge != -1 {
						t.Fatalf("loop cookie not cleared on the error page: %+v", c)
					}
					if res.Header.Get("Location") != "" || res.Header.Get("Cache-Control") != "no-store" {
						t.Fatalf("error page headers: %v", res.Header)
					}
				}
			})
		}
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

func TestRedirectLoopWindow(t *testing.T) {
	f := newMWFixture(t)
	now := ssotest.Epoch
	cases := []struct {
		name   string
		cookie string
		want   string // loop cookie value sent back with the redirect
	}{
		{"fresh round two", "1." + ssotest.Itoa(now.Add(-10*time.Second).Unix()), "2." + ssotest.Itoa(now.Add(-10*time.Second).Unix())},
		{"stale count restarts", "2." + ssotest.Itoa(now.Add(-61*time.Second).Unix()), "1." + ssotest.Itoa(now.Unix())},
		{"future timestamp restarts", "2." + ssotest.Itoa(now.Add(time.Hour).Unix()), "1." + ssotest.Itoa(now.Unix())},
		{"garbage restarts", "x.y", "1." + ssotest.Itoa(now.Unix())},
		{"zero count restarts", "0." + ssotest.Itoa(now.Unix()), "1." + ssotest.Itoa(now.Unix())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := runners[0].serve(t, f, req("GET", "/", browser(), cookieLine(loopCookie+"="+tc.cookie)))
			c := loopCookieFrom(t, rec.Result())
			if rec.Code != 303 || c == nil || c.Value != tc.want {
				t.Fatalf("status %d, loop cookie %+v, want value %q", rec.Code, c, tc.want)
			}
		})
	}
	// Success clears it.
	rec := runners[0].serve(t, f, req("GET", "/", browser(), cookieLine("canopy="+f.token(t, "alice")+"; "+loopCookie+"=1."+ssotest.Itoa(now.Unix()))))
	if c := loopCookieFrom(t, rec.Result()); rec.Code != 200 || c == nil || c.MaxAge != -1 {
		t.Fatalf("success: status %d, loop cookie %+v", rec.Code, c)
	}
	// An API request never counts rounds.
	rec = runners[0].serve(t, f, req("GET", "/", cookieLine(loopCookie+"=2."+ssotest.Itoa(now.Unix()))))
	if rec.Code != 401 || loopCookieFrom(t, rec.Result()) != nil {
		t.Fatalf("API: status %d", rec.Code)
	}
}
