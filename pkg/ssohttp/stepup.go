package ssohttp

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// Step-up. A rule that wants a stronger or fresher sign-in (a *StepUpError)
// sends a browser to the issuer's login with prompt=login, which always asks
// again. A user who cannot satisfy the rule (no second factor set up) would
// come straight back and be sent again, so a host-only cookie records when
// the browser was sent: a sign-in made after that which still falls short
// gets a 403 page that says what is needed, not another round.
const (
	stepUpCookie = "canopy-step-up"
	stepUpWindow = 10 * time.Minute
	// stepUpSlack absorbs clock skew between this service and the issuer
	// when comparing the token's auth_time with the cookie's time.
	stepUpSlack = 5 * time.Second
)

// stepUp answers a request whose token a rule wants stronger or fresher.
func (m *middleware) stepUp(w http.ResponseWriter, r *http.Request, site *SiteConfig, req request, c *sso.Claims, su *StepUpError) {
	login := withReturnTo(withQuery(site.LoginURL, "prompt=login"), req.url)
	if !req.nav {
		m.log.Debug("sso: step-up required", "url", req.url, "err", su)
		w.Header().Set("WWW-Authenticate", stepUpChallenge(su))
		m.refuse(w, r, http.StatusUnauthorized, su, func() {
			writeJSON(w, http.StatusUnauthorized, stepUpBody{
				Error: "insufficient_user_authentication", Reason: sso.Reason(su), LoginURL: login,
				MaxAge: int64(su.MaxAge / time.Second), RequiredAMR: su.AMR,
			})
		})
		return
	}
	now := m.now()
	if sent, ok := stepUpSent(r); ok && !time.Unix(c.AuthTime, 0).Before(sent.Add(-stepUpSlack)) {
		// Signed in again since we sent them, and still short of the rule.
		clearStepUp(w, req.secure)
		m.log.Debug("sso: step-up did not satisfy the rule", "url", req.url, "err", su)
		m.refuse(w, r, http.StatusForbidden, su, func() {
			msg := "This page needs a more recent sign-in, and the one you just made was not accepted. Try again."
			if len(su.AMR) > 0 {
				msg = "This page needs a sign-in with " + describeMethods(su.AMR) +
					". Set one up on your account page at the sign-in service, then try again."
			}
			renderPage(w, http.StatusForbidden, page{Title: "A stronger sign-in is needed", Message: msg, Retry: login})
		})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stepUpCookie, Value: strconv.FormatInt(now.Unix(), 10), Path: "/",
		MaxAge: int(stepUpWindow / time.Second), HttpOnly: true, Secure: req.secure, SameSite: http.SameSiteLaxMode})
	m.log.Debug("sso: redirecting to step up", "url", req.url, "err", su)
	noStore(w)
	http.Redirect(w, r, login, http.StatusSeeOther)
}

// stepUpBody is the 401 body of a step-up for an API request.
type stepUpBody struct {
	Error       string   `json:"error"`
	Reason      string   `json:"reason"`
	LoginURL    string   `json:"login_url"`
	MaxAge      int64    `json:"max_age,omitempty"`
	RequiredAMR []string `json:"required_amr,omitempty"`
}

// stepUpChallenge is RFC 9470's WWW-Authenticate for a step-up.
func stepUpChallenge(su *StepUpError) string {
	ch := `Bearer realm="canopy", error="insufficient_user_authentication", error_description="`
	if len(su.AMR) > 0 {
		ch += "A sign-in with " + describeMethods(su.AMR) + ` is required"`
	} else {
		ch += `A more recent sign-in is required"`
	}
	if su.MaxAge > 0 {
		ch += ", max_age=" + strconv.FormatInt(int64(su.MaxAge/time.Second), 10)
	}
	return ch
}

// stepUpSent returns when this browser was last sent to step up, if within
// the window.
func stepUpSent(r *http.Request) (time.Time, bool) {
	vals, _ := cookieValues(r.Header, stepUpCookie, 1)
	if len(vals) == 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

func clearStepUp(w http.ResponseWriter, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: stepUpCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}

// authorize runs the Authorize rule and answers a refusal; it reports
// whether the request may proceed.
func (m *middleware) authorize(w http.ResponseWriter, r *http.Request, site *SiteConfig, req request, c *sso.Claims) bool {
	if m.cfg.Authorize == nil {
		return true
	}
	err := m.cfg.Authorize(r, c)
	var su *StepUpError
	switch {
	case err == nil:
		if _, ok := stepUpSent(r); ok {
			clearStepUp(w, req.secure)
		}
		return true
	case errors.As(err, &su):
		m.stepUp(w, r, site, req, c, su)
	default:
		m.forbidden(w, r, site, req, err)
	}
	return false
}

// withQuery appends a query parameter (already encoded) to u.
func withQuery(u, param string) string {
	if strings.Contains(u, "?") {
		return u + "&" + param
	}
	return u + "?" + param
}
