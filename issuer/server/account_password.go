package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/password"
)

// changePassword replaces the password after checking the current one, and
// ends every other session (SPEC.md: a change from the account page keeps
// the session that made it). Wrong current passwords are throttled like
// sign-ins.
func (s *Server) changePassword(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/")
	if !ok {
		return err
	}
	if !s.checkCSRF(c) {
		return echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	ctx := c.Request().Context()
	fail := func(status int, msg string) error {
		d, err := s.accountData(c, cur)
		if err != nil {
			return err
		}
		d.PasswordError = msg
		return s.page(c, status, d)
	}
	account, addr := cur.User.Username, clientAddr(c)
	attempt, _ := s.throttle.Begin(account, addr)
	if attempt == nil {
		return fail(http.StatusTooManyRequests, "Too many wrong passwords. Wait a while and try again.")
	}
	defer attempt.Release() // on the paths without an outcome
	current, next := c.FormValue("current_password"), c.FormValue("new_password")
	hctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	if len(current) > 4*password.MaxLength {
		attempt.Failure()
		return fail(http.StatusUnauthorized, "Your current password is not right.")
	}
	if err := s.hasher.Verify(hctx, cur.User.PasswordHash, current); err != nil {
		if errors.Is(err, password.ErrBusy) {
			return err
		}
		attempt.Failure()
		s.event(c, "password_change_failed", cur.User, cur.Session.ID, "wrong current password")
		return fail(http.StatusUnauthorized, "Your current password is not right.")
	}
	attempt.Success()
	if msg := password.CheckPolicy(next); msg != "" {
		return fail(http.StatusBadRequest, msg)
	}
	hash, err := s.hasher.Hash(hctx, next)
	if err != nil {
		return err
	}
	if err := s.store.SetPassword(ctx, cur.User.ID, hash, cur.Session.ID, s.now()); err != nil {
		return err
	}
	s.event(c, "password_change", cur.User, cur.Session.ID, "")
	d, err := s.accountData(c, cur)
	if err != nil {
		return err
	}
	d.Notice = "Your password is changed. Every other session has been signed out."
	return s.page(c, http.StatusOK, d)
}
