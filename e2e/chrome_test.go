package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// actionTimeout bounds every browser action, so that a hung browser fails
// the test instead of hanging CI.
const actionTimeout = 20 * time.Second

var skipNoticeOnce sync.Once

// chromiumPath finds a Chromium (or Chrome) binary on PATH.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab is one browser tab. The first tab of a test owns the browser: a
// fresh Chromium with a fresh profile.
type tab struct {
	t   *testing.T
	ctx context.Context // a started chromedp context, without a deadline

	mu      sync.Mutex
	console []string      // console messages, exceptions and browser log entries
	docs    []string      // URLs of the documents requested, redirects included, in order
	sent    []sentRequest // every request as it went on the wire
}

// sentRequest is a request as Chromium sent it: some of its headers and the
// cookies it attached or held back.
type sentRequest struct {
	host, site, mode string            // Host, Sec-Fetch-Site, Sec-Fetch-Mode
	cookies          map[string]string // sent
	blocked          map[string]string // held back: name → reasons
}

// newChrome starts a headless Chromium with a fresh profile and returns its
// first tab. It skips the test loudly when no Chromium is installed, or
// fails it when CANOPY_REQUIRE_BROWSER=1. Call it after newStack: cleanups
// run last-in first-out, and servers stop at once only when the browser
// holding keep-alive connections to them has gone first.
func newChrome(t *testing.T) *tab {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		const missing = "no Chromium found; install Debian's chromium (apt-get install chromium) " +
			"or put chromium, chromium-browser or google-chrome on PATH"
		if os.Getenv("CANOPY_REQUIRE_BROWSER") == "1" {
			t.Fatal("BROWSER TESTS FAILED: " + missing + " (CANOPY_REQUIRE_BROWSER=1 requires one)")
		}
		msg := "BROWSER TESTS SKIPPED: " + missing + "; set CANOPY_REQUIRE_BROWSER=1 to make this a failure"
		skipNoticeOnce.Do(func() { fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***") })
		t.Skip(msg)
	}
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Cleanups run last-in first-out: the browser stops (and its process is
	// reaped) before t.TempDir removes the profile.
	t.Cleanup(func() { cancel(); cancelAlloc() })
	tb := &tab{t: t, ctx: ctx}
	tb.start(cancelAlloc)
	return tb
}

// newTab opens another tab in the same browser (same cookies).
func (tb *tab) newTab() *tab {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	tb.t.Cleanup(cancel)
	n := &tab{t: tb.t, ctx: ctx}
	n.start(cancel)
	return n
}

// start runs the first action on the tab, which starts the browser or opens
// the tab. That call must not carry a deadline (it would bound the browser's
// life), so a watchdog kills it instead when it hangs.
func (tb *tab) start(kill func()) {
	tb.t.Helper()
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(tb.ctx) }()
	select {
	case err := <-done:
		if err != nil {
			tb.t.Fatalf("starting Chromium: %v", err)
		}
	case <-time.After(actionTimeout):
		kill()
		tb.t.Fatalf("Chromium did not start within %v", actionTimeout)
	}
	if err := chromedp.Listen(tb.ctx, tb.record); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(func() {
		if tb.t.Failed() {
			tb.t.Logf("browser console:\n%s", strings.Join(tb.consoleLines(), "\n"))
		}
	})
	tb.t.Logf("browser tab ready in %v", time.Since(began).Round(time.Millisecond))
}

// record keeps what the page wrote to the console (it runs in chromedp's
// read loop: no commands, return fast).
func (tb *tab) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		line = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			line += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		line = fmt.Sprintf("log %s/%s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
	case *network.EventRequestWillBeSent:
		if ev.Type == network.ResourceTypeDocument {
			tb.mu.Lock()
			tb.docs = append(tb.docs, ev.Request.URL)
			tb.mu.Unlock()
		}
		return
	case *network.EventRequestWillBeSentExtraInfo:
		r := sentRequest{cookies: map[string]string{}, blocked: map[string]string{}}
		for k, v := range ev.Headers {
			val, _ := v.(string)
			switch strings.ToLower(k) {
			case "host":
				r.host = val
			case "sec-fetch-site":
				r.site = val
			case "sec-fetch-mode":
				r.mode = val
			}
		}
		for _, c := range ev.AssociatedCookies {
			if len(c.BlockedReasons) == 0 {
				r.cookies[c.Cookie.Name] = c.Cookie.Value
				continue
			}
			var why []string
			for _, b := range c.BlockedReasons {
				why = append(why, string(b))
			}
			r.blocked[c.Cookie.Name] = strings.Join(why, ",")
		}
		tb.mu.Lock()
		tb.sent = append(tb.sent, r)
		tb.mu.Unlock()
		return
	default:
		return
	}
	tb.mu.Lock()
	tb.console = append(tb.console, line)
	tb.mu.Unlock()
}

func (tb *tab) consoleLines() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.console...)
}

// forget drops the console messages and requests seen so far.
func (tb *tab) forget() {
	tb.mu.Lock()
	tb.console, tb.docs, tb.sent = nil, nil, nil
	tb.mu.Unlock()
}

// documents are the document URLs requested since the last forget.
func (tb *tab) documents() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.docs...)
}

// sentTo are the requests sent to host (host:port) since the last forget.
func (tb *tab) sentTo(host string) []sentRequest {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []sentRequest
	for _, r := range tb.sent {
		if r.host == host {
			out = append(out, r)
		}
	}
	return out
}

// run runs one action with a deadline and fails the test on error.
func run[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// do runs actions in order with one deadline.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	run(tb, what, chromedp.Steps(steps...))
}

// navigate loads u (following redirects) and waits for the load event.
func (tb *tab) navigate(u string) {
	tb.t.Helper()
	tb.do("navigate to "+u, chromedp.Navigate(u))
}

// clickAndLoad clicks the element and waits for the page it leads to.
func (tb *tab) clickAndLoad(sel string) {
	tb.t.Helper()
	run(tb, "click "+sel, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
}

// typeInto types text into the input labelled label, found through its
// <label for>, the way a person finds it.
func (tb *tab) typeInto(label, text string) {
	tb.t.Helper()
	id := eval[string](tb, fmt.Sprintf(`(() => {
		const l = [...document.querySelectorAll("label")].find(l => l.textContent.trim() === %q);
		return l ? l.htmlFor : "";
	})()`, label))
	if id == "" {
		tb.t.Fatalf("no input labelled %q on %s", label, tb.location())
	}
	tb.do("type into "+label, chromedp.SendKeys(chromedp.ID(id), text))
}

// eval evaluates a JavaScript expression in the page, awaiting a promise.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	return run(tb, "evaluate script", chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

func (tb *tab) location() string {
	tb.t.Helper()
	return run(tb, "read location", chromedp.Location())
}

// text is the visible text of the page's <main> (or body).
func (tb *tab) text() string {
	tb.t.Helper()
	return eval[string](tb, `(document.querySelector("main") || document.body).innerText`)
}

// onLoginForm reports whether the page is the issuer's login form.
func (tb *tab) onLoginForm() bool {
	tb.t.Helper()
	return eval[bool](tb, `!!document.querySelector('form[action="/login"] input[type=password]')`)
}

// cookies are all the browser's cookies, as Chromium stores them.
func (tb *tab) cookies() []*network.Cookie {
	tb.t.Helper()
	res := run(tb, "read cookies", func(ctx context.Context, t *chromedp.Target) (storage.GetCookiesResult, error) {
		return chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
	})
	return res.Cookies
}

// cookie is the named cookie, or nil.
func (tb *tab) cookie(name string) *network.Cookie {
	tb.t.Helper()
	for _, c := range tb.cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Screenshot sizes: a phone and a desktop.
var screenSizes = []struct {
	name          string
	width, height int64
	mobile        bool
}{{"phone", 390, 844, true}, {"desktop", 1280, 800, false}}

// screenshot writes PNGs of the current page at each size into
// $CANOPY_SCREENSHOTS, when it is set.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("CANOPY_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	for _, s := range screenSizes {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if s.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		tb.do("resize to "+s.name, chromedp.EmulateViewport(s.width, s.height, opts...),
			chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
		png := run(tb, "screenshot "+name, chromedp.FullScreenshot(100))
		file := filepath.Join(dir, name+"-"+s.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.do("reset viewport", chromedp.EmulateReset())
}
