package ssohttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// RefreshScriptPath is where SPEC.md puts the refresh script on a relying host.
const RefreshScriptPath = "/.canopy/refresh.js"

// refreshScript keeps a page's access token fresh while it stays open, so a
// form filled in slowly is not lost to an expired token. HttpOnly cookies are
// invisible to scripts, so the page tells the script when its token expires
// (data-expires-in, seconds from when the page was rendered: immune to a
// wrong client clock) and how long tokens live (data-lifetime). The script
// POSTs the issuer's /refresh (which answers 204 and sets a fresh cookie)
// 30 s before expiry, or at 80% of a short lifetime, then again one lifetime
// later. A failure is retried after 5, 10, … s (six times at most); a 503
// or 429 with Retry-After (the issuer's store is overloaded) after the wait
// it names, between 1 s and 5 min. A 401 means the session is gone; it stops and fires
// "canopy:signed-out" so the page may react. A hidden tab's timers are
// throttled, so becoming visible again refreshes at once when overdue.
const refreshScript = `(function () {
  "use strict";
  var s = document.currentScript;
  if (!s || !window.fetch) return;
  var url = s.dataset.refreshUrl || %s;
  var left = Number(s.dataset.expiresIn), life = Number(s.dataset.lifetime);
  if (!url || !isFinite(left)) return;
  if (!(life > 0)) life = Math.max(left, 60);
  function margin() { return Math.min(30, life * 0.2); }
  var due = 0, timer = 0, failures = 0, busy = false;
  function schedule(secs) {
    clearTimeout(timer);
    due = Date.now() + Math.max(0, secs) * 1000;
    timer = setTimeout(run, Math.max(0, secs) * 1000);
  }
  function emit(name) { document.dispatchEvent(new CustomEvent(name)); }
  function retry(after) {
    busy = false;
    if (++failures <= 6) schedule(after > 0 ? after : Math.min(30, 5 * failures));
  }
  function retryAfter(r) {
    var v = r.headers && r.headers.get("Retry-After");
    if (!v) return 0;
    var secs = /^\d+$/.test(v) ? Number(v) : (Date.parse(v) - Date.now()) / 1000;
    return isFinite(secs) ? Math.min(Math.max(secs, 1), 300) : 0;
  }
  function run() {
    if (busy) return;
    busy = true;
    fetch(url, { method: "POST", credentials: "include", mode: "cors", cache: "no-store" }).then(function (r) {
      busy = false;
      if (r.ok) { failures = 0; schedule(life - margin()); emit("canopy:refreshed"); return; }
      if (r.status === 401 || r.status === 403) { clearTimeout(timer); emit("canopy:signed-out"); return; }
      retry(r.status === 503 || r.status === 429 ? retryAfter(r) : 0);
    }, function () { retry(0); });
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && due && Date.now() >= due) run();
  });
  schedule(left - margin());
})();
`

// RefreshScript serves the refresh script for an issuer whose POST /refresh
// is refreshURL. It is cacheable (with an ETag), since only the issuer URL is
// baked in.
func RefreshScript(refreshURL string) http.Handler {
	body := []byte(RefreshScriptBody(refreshURL))
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-sso.Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// RefreshScriptBody returns the refresh script's text for refreshURL, for
// programs that bundle it themselves.
func RefreshScriptBody(refreshURL string) string {
	u, _ := json.Marshal(refreshURL)
	// json.Marshal escapes <, > and &, so the URL cannot close a <script>.
	return strings.Replace(refreshScript, "%s", string(u), 1)
}

var refreshTag = template.Must(template.New("tag").Parse(
	`<script src="{{.Src}}" data-expires-in="{{.Left}}" data-lifetime="{{.Life}}" defer></script>`))

// RefreshScriptTag renders the <script> element a protected page includes to
// load the refresh script from src (usually RefreshScriptPath), telling it
// when c expires as seen at now.
func RefreshScriptTag(src string, c *sso.Claims, now time.Time) template.HTML {
	var buf bytes.Buffer
	_ = refreshTag.Execute(&buf, struct {
		Src        string
		Left, Life int64
	}{src, c.Expiry - now.Unix(), c.Expiry - c.IssuedAt})
	return template.HTML(buf.String())
}
