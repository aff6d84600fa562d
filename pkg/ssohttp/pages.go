package ssohttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
)

// page is one of the small HTML pages the middleware renders itself.
type page struct {
	Title      string
	Message    string
	Cause      string // the loop page's explanation
	Retry      string // URL of a "Try again" link
	AutoRetry  bool   // reload by itself (the issuer may come back)
	SwitchUser string // URL of a "Sign in as someone else" link (403)
}

// pageStyle is the pages' stylesheet: the issuer's look (issuer/web/static/canopy.css)
// in brief. It is inline, so the pages need nothing from the host that serves
// them, and pageCSP allows exactly it by hash: a relying service's own strict
// CSP (style-src 'self') would otherwise block it.
const pageStyle = `:root{--fg:#1b1f23;--muted:#57606a;--bg:#f4f6f5;--line:#d0d7de;--accent:#1a7f37;--accent-dark:#116329;--link:#0a5dc2;--focus:#0969da;--error:#b3261e;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-size:16px;line-height:1.5;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;flex-direction:column}
a{color:var(--link);text-underline-offset:.15em}:focus-visible{outline:3px solid var(--focus);outline-offset:2px;border-radius:4px}
.top{padding:.7rem 1.25rem;background:#fff;border-bottom:1px solid var(--line)}
.brand{display:inline-flex;align-items:center;gap:.5rem;font-weight:700;font-size:1.1rem;color:var(--accent-dark)}
.brand::before{content:"";width:1rem;height:1rem;background:var(--accent);border-radius:0 60% 0 60%}
main{flex:1;width:100%;padding:2.5rem 1rem;display:flex;flex-direction:column;align-items:center}
.card{width:100%;max-width:32rem;background:#fff;border:1px solid var(--line);border-radius:12px;padding:1.75rem 1.75rem 1.5rem;box-shadow:0 1px 2px rgba(27,31,35,.04),0 4px 16px rgba(27,31,35,.05)}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 .5rem}p{margin:.75rem 0}
.cause{background:#fff1f0;border:1px solid #f5c2be;border-left:4px solid var(--error);border-radius:8px;padding:.6rem .85rem;overflow-wrap:anywhere}
.meta{color:var(--muted);font-size:.9rem}.alt{margin:1.25rem 0 0;text-align:center}
@media (max-width:30rem){main{padding:1rem .75rem}.card{padding:1.25rem 1.1rem}h1{font-size:1.4rem}}`

var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
{{if .AutoRetry}}<meta http-equiv="refresh" content="15">
{{end}}<title>{{.Title}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<header class="top"><span class="brand">Canopy</span></header>
<main>
<section class="card" aria-labelledby="h">
<h1 id="h">{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Cause}}<p class="cause">{{.Cause}}</p>
{{end}}{{if .SwitchUser}}<p class="alt"><a href="{{.SwitchUser}}">Sign in as someone else</a></p>
{{end}}{{if .Retry}}<p class="alt"><a href="{{.Retry}}">Try again</a></p>
{{end}}{{if .AutoRetry}}<p class="meta">This page also tries again by itself every 15 seconds.</p>
{{end}}</section>
</main>
</body>
</html>
`))

// renderPage writes p with status; a template error (impossible with these
// fields) falls back to plain text rather than a half-written page.
func renderPage(w http.ResponseWriter, status int, p page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		http.Error(w, p.Title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-sso.Options", "nosniff")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
