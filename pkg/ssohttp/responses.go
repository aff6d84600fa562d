package ssohttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// unauthorized is the API answer: 401 with RFC 6750's WWW-Authenticate and
// SPEC.md's JSON body.
func (m *middleware) unauthorized(w http.ResponseWriter, r *http.Request, site *SiteConfig, req request, err error) {
	body := authError{Error: "unauthenticated", Reason: sso.Reason(err), LoginURL: withReturnTo(site.LoginURL, req.url), RefreshURL: site.RefreshURL}
	challenge := `Bearer realm="canopy"`
	if !errors.Is(err, sso.ErrMissing) {
		body.Error = "invalid_token"
		challenge += `, error="invalid_token"`
	}
	m.log.Debug("sso: unauthorized", "url", req.url, "reason", body.Reason, "err", err)
	w.Header().Set("WWW-Authenticate", challenge)
	m.refuse(w, r, http.StatusUnauthorized, err, func() { writeJSON(w, http.StatusUnauthorized, body) })
}

// authError is SPEC.md's 401 body, fields in its order.
type authError struct {
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	LoginURL   string `json:"login_url"`
	RefreshURL string `json:"refresh_url"`
}

func (m *middleware) forbidden(w http.ResponseWriter, r *http.Request, site *SiteConfig, req request, err error) {
	m.log.Debug("sso: forbidden", "url", req.url, "err", err)
	m.refuse(w, r, http.StatusForbidden, err, func() {
		if !req.nav {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
			return
		}
		msg := "You do not have access to this page."
		if fe := (*ForbiddenError)(nil); errors.As(err, &fe) && fe.Message != "" {
			msg = fe.Message
		}
		// The way out of a page that belongs to someone else: sign in as them.
		switchUser := withReturnTo(withQuery(site.LoginURL, "prompt=login"), req.url)
		renderPage(w, http.StatusForbidden, page{Title: "Access denied", Message: msg, SwitchUser: switchUser})
	})
}

// unavailable answers 503: no keys (or no discovery) yet, or, with
// issuerDown, an expired session while the issuer cannot refresh it.
func (m *middleware) unavailable(w http.ResponseWriter, r *http.Request, req request, err error, issuerDown bool) {
	// Debug: during an outage this is every request; the key set and
	// discovery log the outage itself.
	m.log.Debug("sso: sign-in service unavailable", "url", req.url, "err", err)
	w.Header().Set("Retry-After", "10")
	m.refuse(w, r, http.StatusServiceUnavailable, err, func() {
		if !req.nav {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
			return
		}
		p := page{Title: "Sign-in service unavailable", Retry: req.url, AutoRetry: true,
			Message: "This service cannot check who you are yet: it has not reached the sign-in service. Try again shortly."}
		if issuerDown {
			p.Message = "The sign-in service is not answering right now. You are still signed in elsewhere; this page needs a fresh sign-in, which will work once the service is back. Try again shortly."
		}
		renderPage(w, http.StatusServiceUnavailable, p)
	})
}

// refuse sets no-store and renders with the ErrorHandler or the default.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, status int, err error, render func()) {
	noStore(w)
	if m.cfg.ErrorHandler != nil {
		m.cfg.ErrorHandler(w, r, status, err)
		return
	}
	render()
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// withReturnTo appends return_to=target to an issuer URL.
func withReturnTo(base, target string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "return_to=" + url.QueryEscape(target)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // URLs stay readable; the type is JSON, never HTML
	_ = enc.Encode(v)
}
