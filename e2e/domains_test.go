package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Several root domains in Chromium: the issuer serves domain.localhost (the
// primary) and other.localhost, which Chromium treats as different sites;
// a relying app runs on app.other.localhost with --issuer on other.localhost.

// otherDomain is a stack whose issuer also serves other.localhost, with an
// app under it.
type otherDomain struct {
	*stack
	issuerURL string // the issuer on other.localhost
	appURL    string // the relying app on app.other.localhost
}

func newOtherDomainStack(t *testing.T) *otherDomain {
	t.Helper()
	// One issuer process, one listener: other.localhost on the same port.
	s := newStack(t, stackOptions{extraFor: func(issuerPort int) []string {
		return []string{"--url", fmt.Sprintf("http://other.localhost:%d", issuerPort)}
	}})
	o := &otherDomain{stack: s, issuerURL: fmt.Sprintf("http://other.localhost:%d", s.issuerPort)}
	appPort := freePort(t)
	app := start(t, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", appPort), "--issuer", o.issuerURL,
		"--host", "app.other.localhost", "--revocation-poll", "1s")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", appPort), app)
	o.appURL = fmt.Sprintf("http://app.other.localhost:%d/", appPort)
	return o
}

// TestBrowserSeveralDomains: signed up on alice.domain.localhost, opening
// app.other.localhost lands there signed in with no form; signing out there
// ends the session on domain.localhost within one revocation poll.
func TestBrowserSeveralDomains(t *testing.T) {
	s := newOtherDomainStack(t)
	tb := newChrome(t)
	journey(t)
	signUpInBrowser(t, s.stack, tb, "alice")

	tb.forget()
	began := time.Now()
	tb.navigate(s.appURL)
	took := time.Since(began)
	if loc := tb.location(); loc != s.appURL || tb.onLoginForm() {
		t.Fatalf("app.other.localhost: ended on %s (login form: %v)\n%s", loc, tb.onLoginForm(), tb.text())
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("app.other.localhost does not greet alice:\n%s", txt)
	}
	docs := tb.documents()
	// app → other/refresh → domain/authorize → other/handover → app.
	t.Logf("first hop in Chromium: %d redirects, %v from the first request to the app's load: %s",
		len(docs)-1, took.Round(time.Millisecond), strings.Join(paths(docs), " → "))
	if len(docs) != 5 {
		t.Errorf("the hop took %d documents, want 5: %v", len(docs), paths(docs))
	}
	for _, d := range docs {
		if strings.Contains(d, "/login") {
			t.Errorf("the hop went through a sign-in page: %s", d)
		}
	}
	// More hops, each after dropping other.localhost's cookies: the figure
	// the README gives is their median.
	var times []time.Duration
	for range 7 {
		dropCookies(tb, "other.localhost")
		tb.forget()
		began := time.Now()
		tb.navigate(s.appURL)
		times = append(times, time.Since(began))
		if n := len(tb.documents()); n != 5 || tb.location() != s.appURL {
			t.Fatalf("hop again: %d documents, at %s", n, tb.location())
		}
	}
	slices.Sort(times)
	t.Logf("hop in Chromium, 7 runs: median %v, min %v, max %v (4 redirects, the app's page included)",
		times[3].Round(100*time.Microsecond), times[0].Round(100*time.Microsecond), times[6].Round(100*time.Microsecond))
	// Once more, now that other.localhost has its own session: no hop.
	tb.forget()
	tb.navigate(s.appURL)
	if docs := tb.documents(); len(docs) != 1 {
		t.Errorf("with a session on other.localhost the app took %d documents: %v", len(docs), docs)
	}

	// Sign out on other.localhost: alice.domain.localhost asks for a sign-in
	// within one revocation poll (1 s).
	tb.navigate(s.issuerURL + "/logout?return_to=" + s.appURL)
	if txt := tb.text(); !strings.Contains(txt, "alice") {
		t.Fatalf("other.localhost's sign-out page does not say who is signed in:\n%s", txt)
	}
	tb.clickAndLoad(`form[action="/logout"] button[type=submit]`)
	time.Sleep(1500 * time.Millisecond)
	tb.navigate(s.userURL("alice"))
	if loc := tb.location(); !strings.HasPrefix(loc, s.stack.issuerURL+"/login?") || !tb.onLoginForm() {
		t.Fatalf("alice.domain.localhost after signing out on other.localhost: %s, want the sign-in form", loc)
	}
}

// paths are the URLs without their queries, for the log.
func paths(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i], _, _ = strings.Cut(u, "?")
	}
	return out
}

// dropCookies deletes every cookie of domain and its subdomains.
func dropCookies(tb *tab, domain string) {
	tb.t.Helper()
	for _, c := range tb.cookies() {
		d := strings.TrimPrefix(c.Domain, ".")
		if d == domain || strings.HasSuffix(d, "."+domain) {
			run(tb, "delete cookie "+c.Name, func(ctx context.Context, _ *chromedp.Target) (cdp.Empty, error) {
				return chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, Domain: c.Domain, Path: c.Path})
			})
		}
	}
}

// TestBrowserSeveralDomainsSignInFirst: a person with no session who opens
// app.other.localhost signs in once, at the primary, and lands back there.
func TestBrowserSeveralDomainsSignInFirst(t *testing.T) {
	s := newOtherDomainStack(t)
	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "alice"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	tb := newChrome(t)
	journey(t)
	tb.navigate(s.appURL)
	if loc := tb.location(); !strings.HasPrefix(loc, s.stack.issuerURL+"/login?") || !tb.onLoginForm() {
		t.Fatalf("app.other.localhost with no session: %s, want the primary's sign-in form", loc)
	}
	tb.typeInto("Username", "alice")
	tb.typeInto("Password", alicePW)
	tb.forget()
	began := time.Now()
	tb.clickAndLoad(`form[action="/login"] button[type=submit]`)
	// The "Signed in" page goes on by a Refresh header: wait for the app.
	deadline := time.Now().Add(10 * time.Second)
	for tb.location() != s.appURL && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if loc := tb.location(); loc != s.appURL {
		t.Fatalf("after signing in: %s, want %s\n%s", loc, s.appURL, tb.text())
	}
	t.Logf("sign-in to landing on app.other.localhost: %v, documents %v", time.Since(began).Round(time.Millisecond), paths(tb.documents()))
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("app.other.localhost does not greet alice:\n%s", txt)
	}

	// Signing out at the primary ends the linked session too: the app on
	// other.localhost, whose access cookie is still unexpired, learns it
	// from its revocation poll (1 s) and sends the browser to sign in.
	tb.navigate(s.stack.issuerURL + "/logout")
	tb.clickAndLoad(`form[action="/logout"] button[type=submit]`)
	time.Sleep(1500 * time.Millisecond)
	tb.navigate(s.appURL)
	if loc := tb.location(); !strings.HasPrefix(loc, s.stack.issuerURL+"/login?") || !tb.onLoginForm() {
		t.Fatalf("app.other.localhost after signing out at the primary: %s, want the primary's sign-in form", loc)
	}
}
