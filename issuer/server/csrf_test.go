package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// csrfTarget is one state-changing form. prepare signs the browser in as the
// form needs and returns the form's other fields and a probe that reports
// whether a post took effect.
type csrfTarget struct {
	name     string
	path     string
	rerender bool // a refusal shows the form again with a fresh token
	okStatus int  // the status of a post that takes effect; 0 means 303
	prepare  func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool)
}

var csrfTargets = []csrfTarget{
	{name: "login", path: "/login", rerender: true, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
		name := fmt.Sprintf("login%d", n)
		u := h.createUser(name, "correct horse")
		return url.Values{"username": {name}, "password": {"correct horse"}}, func() bool { return h.sessionCount(u.ID) > 0 }
	}},
	{name: "register", path: "/register", rerender: true, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
		name := fmt.Sprintf("new%d", n)
		return url.Values{"username": {name}, "password": {"correct horse"}}, func() bool {
			_, err := h.store.UserByName(context.Background(), name)
			return err == nil
		}
	}},
	{name: "logout", path: "/logout", rerender: true, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
		h.createUser(fmt.Sprintf("out%d", n), "correct horse")
		a.login(fmt.Sprintf("out%d", n), "correct horse")
		sid := a.sid()
		return url.Values{}, func() bool { return !h.sessionActive(sid) }
	}},
	{name: "account signout", path: "/account/signout", prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
		name := fmt.Sprintf("acct%d", n)
		h.createUser(name, "correct horse")
		a.login(name, "correct horse")
		other := h.browser()
		other.login(name, "correct horse")
		sid := other.sid()
		return url.Values{"sid": {sid}}, func() bool { return !h.sessionActive(sid) }
	}},
}

// csrfCase is one way a post can arrive. token and jar say what the browser
// sends given its own form token and another browser's.
type csrfCase struct {
	name   string
	token  func(own, other string) string // "" omits the field
	jar    func(a, other *browser)        // changes a's cookies before the post
	header func(h *harness) http.Header
	ok     bool
}

func originHeader(o string) func(*harness) http.Header {
	return func(*harness) http.Header { return http.Header{"Origin": {o}} }
}

func ownToken(own, _ string) string { return own }

var csrfCases = []csrfCase{
	{name: "valid token, no Origin", token: ownToken, ok: true},
	{name: "valid token, own Origin", token: ownToken, ok: true,
		header: func(h *harness) http.Header { return http.Header{"Origin": {h.origin()}} }},
	{name: "valid token, own Origin, Sec-Fetch-Site same-origin", token: ownToken, ok: true,
		header: func(h *harness) http.Header {
			return http.Header{"Origin": {h.origin()}, "Sec-Fetch-Site": {"same-origin"}}
		}},
	{name: "missing token", token: func(string, string) string { return "" }},
	{name: "wrong token", token: func(string, string) string { return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }},
	{name: "own token truncated", token: func(own, _ string) string { return own[:len(own)-1] }},
	{name: "token of another browser", token: func(_, other string) string { return other }},
	{name: "csrf cookie of another browser", token: ownToken, jar: func(a, other *browser) {
		name := a.h.cfg.Cookies().CSRF
		a.cookies[name] = other.cookies[name]
	}},
	{name: "csrf cookie missing", token: ownToken, jar: func(a, _ *browser) { delete(a.cookies, a.h.cfg.Cookies().CSRF) }},
	{name: "Sec-Fetch-Site cross-site", token: ownToken,
		header: func(*harness) http.Header { return http.Header{"Sec-Fetch-Site": {"cross-site"}} }},
	{name: "Sec-Fetch-Site same-site", token: ownToken,
		header: func(*harness) http.Header { return http.Header{"Sec-Fetch-Site": {"same-site"}} }},
	{name: "Origin of another site", token: ownToken, header: originHeader("http://evil.localhost")},
	// A sibling subdomain is the same site: the browser attaches the
	// SameSite=Strict csrf cookie to its posts, and in development (no
	// __Host- prefix) a sibling could even set that cookie. The signed token
	// already stops it, since a sibling cannot read the issuer's forms; we
	// also refuse every Origin but the issuer's own, because any host under
	// the cookie domain may be compromised and none of them has a reason to
	// post to the issuer's forms.
	{name: "Origin of a sibling subdomain", token: ownToken,
		header: func(h *harness) http.Header {
			return http.Header{"Origin": {"http://alice.domain.localhost:" + h.port}}
		}},
	{name: "Origin of the cookie domain on another port", token: ownToken,
		header: func(*harness) http.Header { return http.Header{"Origin": {"http://domain.localhost:1"}} }},
	{name: "Origin of own host over https", token: ownToken,
		header: func(h *harness) http.Header { return http.Header{"Origin": {"https://domain.localhost:" + h.port}} }},
	{name: "Origin null", token: ownToken, header: originHeader("null")},
}

func TestCSRF(t *testing.T) {
	for _, target := range csrfTargets {
		t.Run(target.name, func(t *testing.T) {
			h := newHarness(t, options{})
			for n, tc := range csrfCases {
				t.Run(tc.name, func(t *testing.T) {
					a, other := h.browser(), h.browser()
					form, done := target.prepare(t, h, a, n)
					own, otherTok := a.token(), other.token()
					if tok := tc.token(own, otherTok); tok != "" {
						form.Set("csrf_token", tok)
					}
					if tc.jar != nil {
						tc.jar(a, other)
					}
					var hdr http.Header
					if tc.header != nil {
						hdr = tc.header(h)
					}
					okStatus := target.okStatus
					if okStatus == 0 {
						okStatus = http.StatusSeeOther
					}
					r := a.do(request{method: http.MethodPost, target: target.path, form: form, header: hdr})
					if tc.ok {
						if r.StatusCode != okStatus || !done() {
							t.Fatalf("POST %s: status %d, took effect %v; want 303 and effect; body:\n%s", target.path, r.StatusCode, done(), r.body)
						}
						return
					}
					if r.StatusCode != http.StatusForbidden {
						t.Fatalf("POST %s: status %d, want 403; body:\n%s", target.path, r.StatusCode, r.body)
					}
					if done() {
						t.Fatalf("POST %s was refused but took effect", target.path)
					}
					cookies := h.cfg.Cookies()
					for _, name := range []string{cookies.Access, cookies.Refresh} {
						if c := setCookies(r)[name]; c != nil {
							t.Errorf("refused POST %s set cookie %s=%q (Max-Age %d)", target.path, name, c.Value, c.MaxAge)
						}
					}
					// The same person posting again from the page they were
					// shown succeeds: the refusal handed out a working token.
					tok := own
					if target.rerender {
						tok = hidden(r.body, "csrf_token")
						fresh := setCookies(r)[cookies.CSRF]
						if tok == "" || fresh == nil || fresh.Value == "" {
							t.Fatalf("refused POST %s: form token %q, csrf cookie %v; want a fresh pair", target.path, tok, fresh)
						}
					} else if tc.jar != nil {
						tok = a.token() // the csrf cookie was swapped or dropped: load the form again
					}
					form.Set("csrf_token", tok)
					r = a.do(request{method: http.MethodPost, target: target.path, form: form})
					if r.StatusCode != okStatus || !done() {
						t.Fatalf("resubmitted POST %s: status %d, took effect %v; want 303 and effect; body:\n%s", target.path, r.StatusCode, done(), r.body)
					}
				})
			}
		})
	}
}
