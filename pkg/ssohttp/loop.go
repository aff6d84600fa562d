package ssohttp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// The redirect-loop guard. A browser this service keeps refusing is sent to
// the issuer's /refresh, which sends it straight back with a token; if this
// service refuses that token too (a cookie that does not reach this host, a
// wrong audience, clock skew, a key this service cannot see) the two would
// bounce the browser forever. A short-lived host-only cookie counts the
// rounds; after loopRounds within loopWindow the browser gets a page that
// says why instead of another redirect.
const (
	loopCookie = "canopy-loop"
	loopRounds = 2
	loopWindow = 60 * time.Second
)

// loopState returns the raw loop cookie, if the request has one.
func loopState(r *http.Request) (string, bool) {
	vals, _ := cookieValues(r.Header, loopCookie, 1)
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// loopCount returns how many redirects to /refresh the browser has had in
// the current window, and when the first was. A missing, garbled or stale
// cookie counts as none.
func loopCount(r *http.Request, now time.Time) (int, time.Time) {
	v, ok := loopState(r)
	if !ok {
		return 0, time.Time{}
	}
	ns, ts, ok := strings.Cut(v, ".")
	n, err1 := strconv.Atoi(ns)
	t, err2 := strconv.ParseInt(ts, 10, 64)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > 100 {
		return 0, time.Time{}
	}
	first := time.Unix(t, 0)
	if age := now.Sub(first); age < 0 || age > loopWindow {
		return 0, time.Time{}
	}
	return n, first
}

func setLoop(w http.ResponseWriter, n int, first time.Time, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name:     loopCookie,
		Value:    strconv.Itoa(n) + "." + strconv.FormatInt(first.Unix(), 10),
		Path:     "/",
		MaxAge:   int(loopWindow / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func clearLoop(w http.ResponseWriter, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name: loopCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
}

// loop shows the error page that ends a redirect loop. Its status is 500:
// every cause is a deployment fault the user cannot fix (and monitoring
// should see it as one); it is not a redirect and not cacheable. The loop
// cookie is cleared, so "Try again" starts a fresh count.
func (m *middleware) loop(w http.ResponseWriter, r *http.Request, v *sso.Verifier, site *SiteConfig, req request, err error, now time.Time) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	cause := loopCause(err, v, site, host, now)
	m.log.Warn("sso: redirect loop between this service and the issuer", "url", req.url, "cause", cause, "err", err)
	clearLoop(w, req.secure)
	m.refuse(w, r, http.StatusInternalServerError, err, func() {
		renderPage(w, http.StatusInternalServerError, page{
			Title:   "Sign-in keeps failing",
			Message: "You were sent to the sign-in service twice, and the sign-in it gives back is still refused here.",
			Cause:   cause,
			Retry:   req.url,
		})
	})
}

// loopCause says, for a person, why the token is still refused. It names
// hosts, domains and times, never internals.
func loopCause(err error, v *sso.Verifier, site *SiteConfig, host string, now time.Time) string {
	var ce *sso.ClaimsError
	errors.As(err, &ce)
	switch {
	case errors.Is(err, sso.ErrMissing):
		return fmt.Sprintf("Cookie domain mismatch: the sign-in service's cookie does not reach this host (%s). "+
			"It is set for %s; this host must be that domain or a subdomain of it, and the browser must accept the cookie.",
			host, site.CookieDomain)
	case errors.Is(err, sso.ErrExpired) && ce != nil:
		return fmt.Sprintf("Clock skew: the token was issued at %s and expires at %s by the sign-in service's clock, "+
			"but this server's clock reads %s (%s after the issue time). Check both clocks (NTP).",
			unixUTC(ce.Claims.IssuedAt), unixUTC(ce.Claims.Expiry), now.UTC().Format(time.RFC3339),
			now.Sub(time.Unix(ce.Claims.IssuedAt, 0)).Round(time.Second))
	case errors.Is(err, sso.ErrUnknownKey):
		return "Unknown key: the token is signed with a key that is not in the sign-in service's key set as this service sees it. " +
			"This service may be reading the key set of another sign-in service."
	case errors.Is(err, ErrAmbiguous):
		return "Conflicting sign-in cookies: this host received cookies for two different sessions. They have been cleared; try again."
	case ce != nil && ce.Claims.Audience != v.Audience():
		return fmt.Sprintf("Cookie domain mismatch (token for %q, this service expects %q).", ce.Claims.Audience, v.Audience())
	case ce != nil && ce.Claims.Issuer != v.Issuer():
		return fmt.Sprintf("Issuer mismatch (token from %q, this service expects %q).", ce.Claims.Issuer, v.Issuer())
	case ce != nil && errors.Is(err, sso.ErrClaims) && ce.Claims.IssuedAt > now.Unix():
		return fmt.Sprintf("Clock skew: the token was issued at %s by the sign-in service's clock, which is in the future by this server's clock (%s). Check both clocks (NTP).",
			unixUTC(ce.Claims.IssuedAt), now.UTC().Format(time.RFC3339))
	case errors.Is(err, sso.ErrRevoked):
		return "Revoked session: the sign-in service keeps handing out tokens for a session this service has seen revoked."
	}
	return fmt.Sprintf("The token is refused here (reason: %s).", sso.Reason(err))
}

func unixUTC(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }
