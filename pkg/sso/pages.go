package sso

import (
	"bytes"
	"html/template"
	"net/http"
)

// page is one of the small HTML pages the middleware renders itself.
type page struct {
	Title     string
	Message   string
	Cause     string // the loop page's explanation
	Retry     string // URL of a "Try again" link
	AutoRetry bool   // reload by itself (the issuer may come back)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .AutoRetry}}<meta http-equiv="refresh" content="15">
{{end}}<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}
h1{font-size:1.4rem}.cause{background:#f6f6f6;border-left:4px solid #c33;padding:.5rem 1rem}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Cause}}<p class="cause">{{.Cause}}</p>
{{end}}{{if .Retry}}<p><a href="{{.Retry}}">Try again</a></p>
{{end}}</body>
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
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
