package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/username"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// loginFailed is the one message for unknown user, wrong password, disabled
// account and throttling, so that none of them can be told apart.
const loginFailed = "Incorrect username or password."

// hashWait bounds how long a login waits for a free argon2id slot before 503.
const hashWait = 10 * time.Second

// accountCapped logs and counts a failure after which the per-account wait of
// browsers without the account's device cookie was capped: someone is
// guessing the account's password from many addresses.
func (s *Server) accountCapped(account string) {
	s.metrics.AccountThrottleCapped()
	s.log.Warn("many failed sign-ins for one account from many addresses; its wait is capped for browsers without its device cookie",
		"account", truncate(account, 63))
}

// returnTo is raw when it is a return URL under any of the issuer's
// domains, else "".
func (s *Server) returnTo(raw string) string { return s.cleanReturn(raw) }

func (s *Server) redirectBack(c echo.Context, returnTo string) error {
	if returnTo == "" {
		returnTo = "/"
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, returnTo)
}

func (s *Server) loginForm(c echo.Context) error {
	returnTo := s.returnTo(c.QueryParam("return_to"))
	reauth := c.QueryParam("prompt") == "login"
	if !reauth && s.alreadySignedIn(c) {
		return s.redirectBack(c, returnTo)
	}
	if d := s.domainOf(c); !d.primary {
		// Signing in happens at the primary: hop there and back.
		return s.hopStart(c, d, returnTo, reauth)
	}
	v := s.newLoginView(returnTo, reauth)
	v.CSRF = s.ensureCSRF(c)
	return s.page(c, http.StatusOK, v)
}

// newLoginView is the sign-in page's data: the password form unless
// --password-login is off, and one button per upstream provider.
func (s *Server) newLoginView(returnTo string, reauth bool) *loginView {
	v := &loginView{ReturnTo: returnTo, Reauth: reauth, PasswordLogin: s.passwordLogin(),
		RegistrationOpen: s.cfg.Registration == "open" && s.passwordLogin()}
	for _, u := range s.sortedUpstreams() {
		q := url.Values{}
		if returnTo != "" {
			q.Set("return_to", returnTo)
		}
		if reauth {
			q.Set("prompt", "login")
		}
		href := "/login/upstream/" + u.cfg.Name
		if len(q) > 0 {
			href += "?" + q.Encode()
		}
		v.Upstreams = append(v.Upstreams, upstreamButton{Label: u.cfg.Label(), Href: href})
	}
	return v
}

// passwordLogin reports whether passwords sign in here (--password-login).
func (s *Server) passwordLogin() bool { return s.cfg.PasswordLogin != "off" }

// passwordLoginOff answers a password post on a site without password sign-in.
func (s *Server) passwordLoginOff(c echo.Context) error {
	return s.page(c, http.StatusForbidden, &messageView{Title: "Password sign-in is turned off",
		Message: "This site signs people in only through its sign-in providers.", Link: "/login", LinkText: "Back to sign-in"})
}

func (s *Server) login(c echo.Context) error {
	if !s.passwordLogin() {
		return s.passwordLoginOff(c)
	}
	returnTo := s.returnTo(c.FormValue("return_to"))
	typed := c.FormValue("username")
	data := s.newLoginView(returnTo, false)
	data.Username = truncate(typed, 63)
	if !s.checkCSRF(c) {
		data.CSRF = s.rotateCSRF(c)
		data.Error = "This form had expired. Please sign in again."
		return s.page(c, http.StatusForbidden, data)
	}
	data.CSRF = s.ensureCSRF(c)
	account := strings.ToLower(truncate(typed, 256))
	addr := clientAddr(c)
	var u store.User // the account, when it exists: its owner sees failures on the account page
	fail := func(outcome string) error {
		s.metrics.Login(outcome)
		// A throttled attempt costs the sender nothing (no hash, no account),
		// so it is answered from memory and only counted: one audit row each
		// would let anyone grow the database at will.
		if outcome != metrics.LoginThrottled {
			s.event(c, "login_failed", u, "", "username "+truncate(account, 63))
		}
		c.Response().Header().Set("WWW-Authenticate", `Form realm="canopy"`)
		data.Error = loginFailed
		return s.page(c, http.StatusUnauthorized, data)
	}
	// A browser that signed in to this account before is counted on its
	// own: strangers guessing from afar never slow its owner down.
	attempt, _ := s.throttle.BeginDevice(account, addr, s.deviceFor(c, account))
	if attempt == nil {
		return fail(metrics.LoginThrottled)
	}
	defer attempt.Release() // on the paths without an outcome: a store error, a busy hasher
	pw := c.FormValue("password")
	if len(pw) > 4*password.MaxLength {
		attempt.Failure()
		return fail(metrics.LoginFailure)
	}
	ctx := c.Request().Context()
	var hash string
	// Lookup, not Normalize: a user who had a name before it was reserved still signs in.
	name, err := username.Lookup(typed)
	if err == nil {
		u, err = s.store.UserByName(ctx, name)
		switch {
		case err == nil && !u.Disabled:
			hash = u.PasswordHash
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	// An empty hash runs against the dummy hash: the same work, always a mismatch.
	hctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	if err := s.hasher.Verify(hctx, hash, pw); err != nil {
		if errors.Is(err, password.ErrBusy) {
			s.metrics.Login(metrics.LoginBusy)
			return err
		}
		if attempt.Failure() {
			s.accountCapped(account)
		}
		return fail(metrics.LoginFailure)
	}
	attempt.Success()
	second, err := s.hasSecondFactor(c, u)
	if err != nil {
		return err
	}
	if second {
		// No session yet: the second factor completes the sign-in.
		if err := s.startPending(c, u, pendingData{ReturnTo: returnTo, AMR: []string{wire.AMRPassword}}); err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, "/login/otp")
	}
	s.metrics.Login(metrics.LoginSuccess)
	sess, err := s.startSession(c, u, []string{wire.AMRPassword})
	if err != nil {
		return err
	}
	s.event(c, "login", u, sess.ID, "")
	return s.redirectBack(c, returnTo)
}
