package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser journeys walk SPEC.md's journeys in a real Chromium against
// the real binaries: what Go's cookie jar cannot show (Domain cookies across
// subdomains as a browser stores them, SameSite, CORS with credentials, CSP,
// two tabs at once) is checked here.

// journey logs how long a journey took, at the end of the test.
func journey(t *testing.T) {
	began := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), time.Since(began).Round(time.Millisecond)) })
}

// signUpInBrowser starts at the user's page while signed out, follows the
// browser to the login page, creates the account through the forms, and
// checks that it ends on the user's page, greeted by name.
func signUpInBrowser(t *testing.T, s *stack, tb *tab, name string) {
	t.Helper()
	home := s.userURL(name)
	tb.navigate(home)
	loc := tb.location()
	if !strings.HasPrefix(loc, s.issuerURL+"/login?") || !tb.onLoginForm() {
		t.Fatalf("anonymous visit to %s ended on %s, want the login form", home, loc)
	}
	if got := loginReturnTo(t, loc); got != home {
		t.Fatalf("login return_to = %q, want %q", got, home)
	}
	tb.clickAndLoad(`a[href^="/register"]`)
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/register?") {
		t.Fatalf(`"Create an account" led to %s`, loc)
	}
	tb.typeInto("Username", name)
	tb.typeInto("Password", alicePW)
	tb.clickAndLoad(`form[action="/register"] button[type=submit]`)
	if loc := tb.location(); loc != home {
		t.Fatalf("after sign-up the browser is on %s, want %s\n%s", loc, home, tb.text())
	}
	if h1 := eval[string](tb, `document.querySelector("h1").innerText`); !strings.Contains(h1, name) {
		t.Fatalf("%s's page does not greet them by name: h1 %q", name, h1)
	}
}

func loginReturnTo(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("return_to")
}

// TestBrowserSignUp: an anonymous visit to alice's page leads to the login
// page, "Create an account", the sign-up form, and back to alice's page,
// greeted by name; the cookies are what SPEC.md says, as Chromium stores them.
func TestBrowserSignUp(t *testing.T) {
	s := newStack(t, stackOptions{})
	tb := newChrome(t)
	journey(t)
	signUpInBrowser(t, s, tb, "alice")

	access, refresh := tb.cookie("canopy"), tb.cookie("canopy-refresh")
	if access == nil || refresh == nil {
		t.Fatalf("cookies after sign-up: %s", describeCookies(tb.cookies()))
	}
	// Chromium reports a Domain cookie with a leading dot.
	if access.Domain != "."+s.domain || !access.HTTPOnly || access.SameSite != network.CookieSameSiteLax ||
		access.Secure || access.Path != "/" || access.Session {
		t.Errorf("access cookie: %s", describeCookie(access))
	}
	// The refresh cookie is host-only on the issuer's host: no leading dot.
	if refresh.Domain != s.domain || !refresh.HTTPOnly || refresh.SameSite != network.CookieSameSiteLax || refresh.Path != "/" {
		t.Errorf("refresh cookie: %s", describeCookie(refresh))
	}
	if csrf := tb.cookie("canopy-csrf"); csrf == nil {
		t.Error("no CSRF cookie after the forms")
	} else if csrf.Domain != s.domain || csrf.SameSite != network.CookieSameSiteStrict || !csrf.HTTPOnly {
		t.Errorf("csrf cookie: %s", describeCookie(csrf))
	}
	checkToken(t, s, access.Value, "alice")
}

// TestBrowserOtherPages: signed in as alice, bob's page refuses with a 403
// page that says whose it is, and the app greets alice with no login form.
func TestBrowserOtherPages(t *testing.T) {
	s := newStack(t, stackOptions{})
	tb := newChrome(t)
	journey(t)
	signUpInBrowser(t, s, tb, "alice")

	bob := s.userURL("bob")
	resp := run(tb, "navigate to bob's page", chromedp.NavigateResponse(bob))
	if resp.Status != 403 || tb.location() != bob {
		t.Fatalf("bob's page: status %d at %s, want 403 at %s", resp.Status, tb.location(), bob)
	}
	if txt := tb.text(); !strings.Contains(txt, "belongs to bob") || !strings.Contains(txt, "alice") {
		t.Fatalf("403 page does not say whose page it is:\n%s", txt)
	}

	tb.navigate(s.appURL())
	if loc := tb.location(); loc != s.appURL() || tb.onLoginForm() {
		t.Fatalf("app: ended on %s (login form: %v)", loc, tb.onLoginForm())
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("app does not greet alice:\n%s", txt)
	}
}

// TestBrowserSignOut: the sign-out link on alice's page leads to the
// issuer's confirmation page; its button signs out everywhere: alice's page,
// bob's page and the app all send the browser to the login form.
func TestBrowserSignOut(t *testing.T) {
	s := newStack(t, stackOptions{})
	tb := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	signUpInBrowser(t, s, tb, "alice")

	tb.clickAndLoad(`a[href^="` + s.issuerURL + `/logout?"]`)
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/logout?") {
		t.Fatalf("sign-out link led to %s", loc)
	}
	if txt := tb.text(); !strings.Contains(txt, "alice") {
		t.Fatalf("confirmation page does not say who is signed in:\n%s", txt)
	}
	tb.clickAndLoad(`form[action="/logout"] button[type=submit]`)
	if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/login?") || loginReturnTo(t, loc) != alice || !tb.onLoginForm() {
		t.Fatalf("after sign-out the browser is on %s, want the login form for %s", loc, alice)
	}
	for _, name := range []string{"canopy", "canopy-refresh"} {
		if c := tb.cookie(name); c != nil {
			t.Errorf("cookie left after sign-out: %s", describeCookie(c))
		}
	}
	for _, u := range []string{alice, s.userURL("bob"), s.appURL()} {
		tb.navigate(u)
		if loc := tb.location(); !strings.HasPrefix(loc, s.issuerURL+"/login?") || !tb.onLoginForm() {
			t.Errorf("%s after sign-out: ended on %s, want the login form", u, loc)
		}
	}
}

// TestBrowserCrossSiteArrival: a link on another site (other.localhost)
// leads to alice's page with a live session: signed in at once, because the
// access cookie is SameSite=Lax and a link is a top-level GET navigation.
func TestBrowserCrossSiteArrival(t *testing.T) {
	s := newStack(t, stackOptions{})
	tb := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	signUpInBrowser(t, s, tb, "alice")

	other := otherSite(t, `<!doctype html><html lang="en"><head><title>Elsewhere</title></head>
<body><main><h1>Elsewhere</h1><p><a id="go" href="`+alice+`">Alice's page</a></p></main></body></html>`)
	tb.navigate(other)
	tb.forget()
	tb.clickAndLoad("#go")
	if loc := tb.location(); loc != alice || tb.onLoginForm() {
		t.Fatalf("the link led to %s (login form: %v)", loc, tb.onLoginForm())
	}
	if docs := tb.documents(); len(docs) != 1 {
		t.Errorf("arrival took %q, want one request straight to alice's page", docs)
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("alice's page:\n%s", txt)
	}
	sent := tb.sentTo(hostOf(t, alice))
	if len(sent) == 0 {
		t.Fatal("no request to alice's host recorded")
	}
	r := sent[0]
	t.Logf("arrival: Sec-Fetch-Site %q, Sec-Fetch-Mode %q, cookies sent %v, held back %v", r.site, r.mode, keys(r.cookies), r.blocked)
	if r.site != "cross-site" || r.mode != "navigate" {
		t.Errorf("Sec-Fetch-Site %q, Sec-Fetch-Mode %q, want cross-site navigate", r.site, r.mode)
	}
	if r.cookies["canopy"] == "" {
		t.Errorf("the Lax access cookie was not sent on the cross-site link (held back: %v)", r.blocked)
	}
}

// otherSite serves one page on another site, other.localhost, and returns its URL.
func otherSite(t *testing.T, html string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, html)
	}))
	t.Cleanup(srv.Close)
	return fmt.Sprintf("http://other.localhost:%d/", srv.Listener.Addr().(*net.TCPAddr).Port)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describeCookie(c *network.Cookie) string {
	return strings.Join([]string{c.Name, "domain=" + c.Domain, "path=" + c.Path,
		"httpOnly=" + strconv.FormatBool(c.HTTPOnly), "secure=" + strconv.FormatBool(c.Secure),
		"sameSite=" + string(c.SameSite), "session=" + strconv.FormatBool(c.Session)}, " ")
}

func describeCookies(cs []*network.Cookie) string {
	var out []string
	for _, c := range cs {
		out = append(out, describeCookie(c))
	}
	return strings.Join(out, "; ")
}
