package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// shortTTL makes access tokens expire within the test; leeway 0 makes the
// relying services notice at once.
var shortTTL = stackOptions{accessTTL: "3s", leeway: "0s"}

// waitForExpiry sleeps until the access token in the browser has expired
// (one second past its exp, as exp has whole seconds) and returns its value.
func waitForExpiry(t *testing.T, tb *tab) string {
	t.Helper()
	c := tb.cookie("canopy")
	if c == nil {
		t.Fatal("no access cookie")
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		t.Fatalf("access cookie is not a JWS: %q", c.Value)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	d := time.Until(time.Unix(claims.Exp+1, 0))
	if d > 10*time.Second {
		t.Fatalf("token lives %v more; the stack should use a short access TTL", d)
	}
	time.Sleep(d)
	return c.Value
}

// hostOf is the host:port of u.
func hostOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// TestBrowserSilentRefresh: an open page keeps its token fresh by itself
// (refresh.js); a page opened after the token expired goes through the
// issuer's /refresh and back without a login form. Either way the browser
// ends with a new access cookie.
func TestBrowserSilentRefresh(t *testing.T) {
	s := newStack(t, shortTTL)
	tb := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	signUpInBrowser(t, s, tb, "alice")

	// Stay on the page past the token's expiry: refresh.js renews it.
	tb.forget()
	old := waitForExpiry(t, tb)
	// The script renews at 80% of the lifetime; allow a loaded machine
	// some slack beyond the expiry.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c := tb.cookie("canopy"); c != nil && c.Value != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refresh.js did not renew the access cookie of the open page")
		}
	}
	if docs := tb.documents(); len(docs) != 0 {
		t.Fatalf("the open page navigated: %q", docs)
	}
	if n := len(tb.sentTo(hostOf(t, s.issuerURL))); n == 0 {
		t.Fatal("no request from the page to the issuer")
	}

	// Leave, let the token expire, come back: the navigation refreshes.
	tb.navigate("about:blank")
	old = waitForExpiry(t, tb)
	tb.forget()
	tb.navigate(alice)
	if loc := tb.location(); loc != alice || tb.onLoginForm() {
		t.Fatalf("after expiry the navigation ended on %s (login form: %v)", loc, tb.onLoginForm())
	}
	docs := tb.documents()
	if len(docs) != 3 || docs[0] != alice || !strings.HasPrefix(docs[1], s.issuerURL+"/refresh?") || docs[2] != alice {
		t.Fatalf("navigation went through %q, want alice → /refresh → alice", docs)
	}
	if c := tb.cookie("canopy"); c == nil || c.Value == old {
		t.Fatal("the access cookie did not change")
	}
	if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
		t.Fatalf("page after refresh:\n%s", txt)
	}
}

// withoutRefreshScript makes the tab refuse to load refresh.js, so that an
// open page's token really expires (as when a laptop sleeps).
func withoutRefreshScript(tb *tab) {
	tb.t.Helper()
	tb.do("block refresh.js", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
			URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/.canopy/refresh.js", Block: true}}})
		return err
	}))
}

// fetchResult is what the page's script saw.
type fetchResult struct {
	First      int    `json:"first"`
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	RefreshURL string `json:"refreshURL"`
	Refresh    int    `json:"refresh"`
	Second     int    `json:"second"`
	Preflight  int    `json:"preflight"`
}

// fetchAfterExpiry is a page's script: an API call that gets 401 JSON, a
// credentialed CORS POST to the issuer's /refresh named in that body, and the
// same call again; then a refresh that needs a CORS preflight.
const fetchAfterExpiry = `(async () => {
	const api = () => fetch("/api/x", {headers: {Accept: "application/json"}});
	const first = await api();
	const body = await first.json().catch(() => ({}));
	const refresh = await fetch(body.refresh_url, {method: "POST", credentials: "include"});
	const second = await api();
	const preflight = await fetch(body.refresh_url, {method: "POST", credentials: "include",
		headers: {"Content-Type": "application/json"}, body: "{}"});
	return {first: first.status, error: body.error || "", reason: body.reason || "",
		refreshURL: body.refresh_url || "", refresh: refresh.status, second: second.status,
		preflight: preflight.status};
})()`

// TestBrowserFetchRefresh: a script on alice's page whose token expired gets
// 401 JSON from its own API, refreshes with fetch() against the issuer (CORS
// with credentials, on another origin of the same site) and retries.
func TestBrowserFetchRefresh(t *testing.T) {
	s := newStack(t, shortTTL)
	tb := newChrome(t)
	journey(t)
	withoutRefreshScript(tb)
	signUpInBrowser(t, s, tb, "alice")

	old := waitForExpiry(t, tb)
	r := eval[fetchResult](tb, fetchAfterExpiry)
	t.Logf("page script saw %+v", r)
	if r.First != 401 || r.Error != "invalid_token" || r.Reason != "expired" {
		t.Errorf("API call after expiry: %d %s/%s, want 401 invalid_token/expired", r.First, r.Error, r.Reason)
	}
	if r.RefreshURL != s.issuerURL+"/refresh" || r.Refresh != 204 {
		t.Errorf("POST %s from the page: %d, want 204 from %s/refresh", r.RefreshURL, r.Refresh, s.issuerURL)
	}
	// Signed in again: the path is no page, so 404 rather than 401.
	if r.Second == 401 || r.Second != 404 {
		t.Errorf("API call after refresh: %d, want 404 (authenticated, no such page)", r.Second)
	}
	if r.Preflight != 204 {
		t.Errorf("preflighted POST /refresh: %d, want 204", r.Preflight)
	}
	if c := tb.cookie("canopy"); c == nil || c.Value == old {
		t.Error("the access cookie did not change")
	}
	for _, line := range tb.consoleLines() {
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "CORS") {
			t.Errorf("browser refused something: %s", line)
		}
	}
}

// TestBrowserTwoTabs: two tabs of one browser navigate at the same moment
// after expiry; both go through /refresh with the same refresh token and
// both stay signed in (the predecessor converges within the grace).
func TestBrowserTwoTabs(t *testing.T) {
	s := newStack(t, shortTTL)
	first := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	signUpInBrowser(t, s, first, "alice")
	second := first.newTab()
	second.navigate(alice)
	if !strings.Contains(second.text(), "Hello, alice") {
		t.Fatal("the second tab is not signed in")
	}
	// Both tabs leave alice's page (whose script would renew the token)
	// and come back at the same moment after it expired.
	first.navigate("about:blank")
	second.navigate("about:blank")
	waitForExpiry(t, first)
	tabs := []*tab{first, second}
	errs := make([]error, len(tabs))
	var start, wg sync.WaitGroup
	start.Add(1)
	for i, tb := range tabs {
		tb.forget()
		wg.Go(func() {
			start.Wait()
			ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
			defer cancel()
			errs[i] = chromedp.Do(ctx, chromedp.Navigate(alice))
		})
	}
	start.Done()
	wg.Wait()

	issuer := hostOf(t, s.issuerURL)
	presented := map[string]bool{}
	for i, tb := range tabs {
		if errs[i] != nil {
			t.Fatalf("tab %d: %v", i+1, errs[i])
		}
		if loc := tb.location(); loc != alice || tb.onLoginForm() {
			t.Fatalf("tab %d ended on %s (login form: %v)", i+1, loc, tb.onLoginForm())
		}
		if txt := tb.text(); !strings.Contains(txt, "Hello, alice") {
			t.Fatalf("tab %d:\n%s", i+1, txt)
		}
		sent := tb.sentTo(issuer)
		if len(sent) == 0 {
			t.Fatalf("tab %d did not go through the issuer's /refresh", i+1)
		}
		for _, r := range sent {
			presented[r.cookies["canopy-refresh"]] = true
		}
	}
	// Whether the two /refresh requests really raced (one token presented
	// twice: the grace path) depends on timing; the log says which it was.
	t.Logf("the two tabs presented %d distinct refresh token(s) to /refresh", len(presented))
}
