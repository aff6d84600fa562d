package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/password"
)

// passwordRefused is a password typed into an account form that was not
// accepted: the status and the public message to show with the form again.
type passwordRefused struct {
	status int
	msg    string
}

// confirmPassword checks a password typed into an account form now: the
// re-authentication that changing the password or a second factor needs,
// so that an open session alone (a shared computer, a session cookie
// somehow taken) cannot change what signs in. Wrong passwords are throttled
// like sign-ins of the account from this address, and recorded as event
// kind. It returns nil when the password is right; a fault is err.
func (s *Server) confirmPassword(c echo.Context, cur *current, typed, kind string) (*passwordRefused, error) {
	attempt, _ := s.throttle.Begin(cur.User.Username, clientAddr(c))
	if attempt == nil {
		return &passwordRefused{http.StatusTooManyRequests, "Too many wrong passwords. Wait a while and try again."}, nil
	}
	defer attempt.Release() // on the paths without an outcome
	wrong := &passwordRefused{http.StatusUnauthorized, "Your current password is not right."}
	if typed == "" {
		return &passwordRefused{http.StatusUnauthorized, "Type your current password to confirm this change."}, nil
	}
	if len(typed) > 4*password.MaxLength {
		attempt.Failure()
		return wrong, nil
	}
	hctx, cancel := context.WithTimeout(c.Request().Context(), hashWait)
	defer cancel()
	if err := s.hasher.Verify(hctx, cur.User.PasswordHash, typed); err != nil {
		if errors.Is(err, password.ErrBusy) {
			return nil, err
		}
		attempt.Failure()
		s.event(c, kind, cur.User, cur.Session.ID, "wrong current password")
		return wrong, nil
	}
	attempt.Success()
	return nil, nil
}

// changePassword replaces the password after checking the current one. With
// "sign out everywhere else" (checked on the form) every other session ends
// (SPEC.md: a change from the account page keeps the session that made
// it); without, the other sessions stay. The confirmation lists the second
// factors that still guard the account.
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
	refused, err := s.confirmPassword(c, cur, c.FormValue("current_password"), "password_change_failed")
	if err != nil {
		return err
	}
	if refused != nil {
		if refused.status == http.StatusUnauthorized {
			refused.msg = "Your current password is not right."
		}
		return fail(refused.status, refused.msg)
	}
	next := c.FormValue("new_password")
	if msg := password.CheckPolicy(next); msg != "" {
		return fail(http.StatusBadRequest, msg)
	}
	hctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	hash, err := s.hasher.Hash(hctx, next)
	if err != nil {
		return err
	}
	signOut := c.FormValue("signout_others") != ""
	if signOut {
		err = s.store.SetPassword(ctx, cur.User.ID, hash, cur.Session.ID, s.now())
	} else {
		err = s.store.ReplacePassword(ctx, cur.User.ID, hash)
	}
	if err != nil {
		return err
	}
	detail := "other sessions kept"
	if signOut {
		detail = "other sessions signed out"
	}
	s.event(c, "password_change", cur.User, cur.Session.ID, detail)
	d, err := s.accountData(c, cur)
	if err != nil {
		return err
	}
	d.Notice = "Your password is changed."
	if signOut {
		d.Notice += " Every other session has been signed out."
	} else {
		d.Notice += " Your other sessions stay signed in."
	}
	d.Notice += " " + factorSummary(d.TOTPOn, d.PasskeyCount, d.RecoveryLeft)
	return s.page(c, http.StatusOK, d)
}

// factorSummary says in a sentence which second factors the account keeps.
func factorSummary(totp bool, passkeys, recovery int) string {
	var have []string
	if totp {
		have = append(have, "an authenticator app")
	}
	switch {
	case passkeys == 1:
		have = append(have, "1 passkey")
	case passkeys > 1:
		have = append(have, fmt.Sprintf("%d passkeys", passkeys))
	}
	if len(have) == 0 {
		return "Your account has no second factor: your password alone signs in."
	}
	if recovery > 0 {
		have = append(have, fmt.Sprintf("%d recovery codes", recovery))
	}
	list := strings.Join(have[:len(have)-1], ", ")
	if list != "" {
		list += " and "
	}
	return "Still on your account: " + list + have[len(have)-1] + "."
}
