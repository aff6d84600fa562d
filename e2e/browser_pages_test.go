package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yCheck runs in a page and lists what is wrong with it: missing lang,
// <main>, <h1> or <title>; inputs without a label; buttons and links without
// a name; text whose contrast with its background (WCAG 2 formula, from
// getComputedStyle, through translucent layers) is under 4.5:1 (3:1 for
// large text); raw program errors in the text.
const a11yCheck = `(() => {
	const v = [], doc = document;
	if (!(doc.documentElement.getAttribute("lang") || "").trim()) v.push("<html> has no lang");
	const mains = doc.querySelectorAll("main").length, h1s = doc.querySelectorAll("h1").length;
	if (mains !== 1) v.push(mains + " <main> elements, want 1");
	if (h1s !== 1) v.push(h1s + " <h1> elements, want 1");
	if (!doc.title.trim()) v.push("no <title>");
	for (const el of doc.querySelectorAll("input, select, textarea")) {
		if (el.type === "hidden") continue;
		const byFor = el.id && doc.querySelector('label[for="' + CSS.escape(el.id) + '"]');
		const byAria = (el.getAttribute("aria-label") || "").trim();
		const byIds = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
			.map(id => doc.getElementById(id)).filter(e => e && e.textContent.trim());
		if (!(byFor && byFor.textContent.trim()) && !byAria && !byIds.length && !el.closest("label"))
			v.push("unlabelled <" + el.tagName.toLowerCase() + " name=" + el.name + ">");
	}
	for (const el of doc.querySelectorAll("button, a[href]"))
		if (!(el.textContent.trim() || (el.getAttribute("aria-label") || "").trim())) v.push("<" + el.tagName.toLowerCase() + "> without a name");

	const rgba = s => {
		const m = /^rgba?\(([^)]*)\)$/.exec(s);
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
		return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
	};
	const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
	const background = el => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = rgba(getComputedStyle(e).backgroundColor);
			if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
		}
		return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
	};
	const lum = c => {
		const [r, g, b] = c.slice(0, 3).map(x => (x /= 255) <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
	const seen = new Set();
	for (const el of [doc.body, ...doc.body.querySelectorAll("*")]) {
		const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
		if ((el !== doc.body && !own) || !el.getClientRects().length) continue;
		const cs = getComputedStyle(el);
		if (cs.visibility === "hidden") continue;
		const bg = background(el), fg = over(rgba(cs.color), bg);
		const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		const r = ratio(fg, bg), key = cs.color + " on " + bg;
		if (r < need && !seen.has(key)) {
			seen.add(key);
			v.push("contrast " + r.toFixed(2) + " < " + need + ": <" + el.tagName.toLowerCase() + "> " +
				JSON.stringify(el.textContent.trim().slice(0, 30)) + " " + cs.color + " on rgb(" + bg.slice(0, 3).map(Math.round) + ")");
		}
	}
	const text = doc.body.innerText;
	for (const bad of ["%!", "<nil>", "sql:", "runtime error", "goroutine ", "context deadline", "{{", "map[", "Internal Server Error"])
		if (text.includes(bad)) v.push("page text contains " + JSON.stringify(bad));
	return v;
})()`

// focusCheck tells whether the element that keyboard focus is on shows it.
const focusCheck = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return "";
	const cs = getComputedStyle(el);
	const ring = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2;
	return ring || cs.boxShadow !== "none" ? "" : "no visible focus on <" + el.tagName.toLowerCase() + ">";
})()`

// audit checks the page the tab is on and lists its problems: a11yCheck,
// focus visibility after a Tab key press, and what the browser refused or
// threw (CSP violations, script errors) while loading it.
func audit(tb *tab) []string {
	tb.t.Helper()
	problems := eval[[]string](tb, a11yCheck)
	if eval[bool](tb, `!!document.querySelector("a[href], button, input:not([type=hidden])")`) {
		tb.do("press Tab", chromedp.KeyEvent(kb.Tab))
		if p := eval[string](tb, focusCheck); p != "" {
			problems = append(problems, p)
		}
	}
	for _, line := range tb.consoleLines() {
		if strings.Contains(line, "Content Security Policy") || strings.HasPrefix(line, "exception:") {
			problems = append(problems, "browser: "+line)
		}
	}
	return problems
}

// TestPagesAccessible opens every page a person meets (the issuer's login,
// sign-up with and without field errors, account, sign-out confirmation and
// error pages; the relying pages, the 403, the not-found and the
// sign-in-unavailable pages) and fails listing what audit finds. With
// CANOPY_SCREENSHOTS set to a folder it writes each page at phone and
// desktop widths.
func TestPagesAccessible(t *testing.T) {
	t.Run("the check finds problems", func(t *testing.T) {
		tb := newChrome(t)
		tb.navigate(otherSite(t, `<!doctype html><html><head></head><body style="color:#999">
<div><input name="q"><p>faint text</p><button></button></div></body></html>`))
		got := strings.Join(audit(tb), "\n")
		for _, want := range []string{"no lang", "0 <main>", "0 <h1>", "no <title>", "unlabelled <input name=q>", "<button> without a name", "contrast 2.85"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit of a bad page misses %q; it found:\n%s", want, got)
			}
		}
	})

	s := newStack(t, stackOptions{})
	// Two misconfigured relying services for the middleware's error pages:
	// one whose issuer is not there (sign-in unavailable), one that expects
	// another audience (the redirect loop ends on an explanation).
	misconfigured := func(args ...string) string {
		port := freePort(t)
		p := start(t, "relying", append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--host", "app." + s.domain}, args...)...)
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/.canopy/healthz", port), p)
		return fmt.Sprintf("http://app.%s:%d/", s.domain, port)
	}
	down := misconfigured("--issuer", fmt.Sprintf("http://%s:%d", s.domain, freePort(t)))
	loop := misconfigured("--issuer", s.issuerURL, "--audience", "elsewhere.localhost")

	tb := newChrome(t)
	journey(t)
	alice := s.userURL("alice")
	check := func(name string) {
		t.Helper()
		for _, p := range audit(tb) {
			t.Errorf("%s page (%s): %s", name, tb.location(), p)
		}
		tb.screenshot(name)
		tb.forget()
	}
	visit := func(name, u string) {
		t.Helper()
		tb.forget()
		tb.navigate(u)
		check(name)
	}
	submit := func(name, form string, fields ...string) {
		t.Helper()
		for i := 0; i < len(fields); i += 2 {
			tb.typeInto(fields[i], fields[i+1])
		}
		tb.clickAndLoad(`form[action="` + form + `"] button[type=submit]`)
		check(name)
	}

	visit("login", alice)
	submit("login-error", "/login", "Username", "alice", "Password", "not the password")
	visit("register", s.issuerURL+"/register?return_to="+url.QueryEscape(alice))
	submit("register-error", "/register", "Username", "-Alice-", "Password", "short")
	tb.navigate(s.issuerURL + "/register?return_to=" + url.QueryEscape(alice))
	submit("register-reserved", "/register", "Username", "admin", "Password", alicePW)

	tb.navigate(s.issuerURL + "/register?return_to=" + url.QueryEscape(alice))
	submit("profile", "/register", "Username", "alice", "Password", alicePW)
	if tb.location() != alice {
		t.Fatalf("sign-up ended on %s", tb.location())
	}
	visit("app", s.appURL())
	visit("forbidden", s.userURL("bob"))
	visit("notfound", alice+"no/such/page")
	visit("account", s.issuerURL+"/")
	visit("logout", s.issuerURL+"/logout?return_to="+url.QueryEscape(alice))
	visit("error", s.issuerURL+"/no/such/page")
	visit("loop", loop)
	visit("unavailable", down)
}
