package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// registerForm and register are sign-up: when registration is open, a new
// account and its first session, signed in with a password.
func (s *Server) registerForm(c echo.Context) error {
	if s.cfg.Registration != "open" || !s.passwordLogin() {
		return s.registrationClosed(c)
	}
	return s.page(c, http.StatusOK, &registerView{CSRF: s.ensureCSRF(c),
		ReturnTo: s.returnTo(c.QueryParam("return_to")), MinPassword: password.MinLength})
}

func (s *Server) registrationClosed(c echo.Context) error {
	return s.page(c, http.StatusForbidden, &messageView{Title: "Sign-up is closed",
		Message: "New accounts are not being created here. Ask an administrator for an account.",
		Link:    "/login", LinkText: "Sign in"})
}

func (s *Server) register(c echo.Context) error {
	if s.cfg.Registration != "open" || !s.passwordLogin() {
		return s.registrationClosed(c)
	}
	typed := c.FormValue("username")
	data := &registerView{ReturnTo: s.returnTo(c.FormValue("return_to")), Username: truncate(typed, 63), MinPassword: password.MinLength}
	if !s.checkCSRF(c) {
		data.CSRF = s.rotateCSRF(c)
		data.Error = "This form had expired. Please try again."
		return s.page(c, http.StatusForbidden, data)
	}
	data.CSRF = s.ensureCSRF(c)
	name, err := s.names.Normalize(typed)
	if err != nil {
		data.UsernameError = "Username " + err.Error() + "."
	}
	pw := c.FormValue("password")
	if msg := password.CheckPolicy(pw); msg != "" {
		data.PasswordError = msg
	}
	if data.UsernameError != "" || data.PasswordError != "" {
		data.Error = "Please correct the fields below."
		return s.page(c, http.StatusBadRequest, data)
	}
	ctx := c.Request().Context()
	// Answer "taken" before paying for a hash; CreateUser below still decides races.
	if _, err := s.store.UserByName(ctx, name); err == nil {
		return s.nameTaken(c, data)
	}
	hctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	hash, err := s.hasher.Hash(hctx, pw)
	if err != nil {
		return err
	}
	u := store.User{ID: randomID(16), Username: name, PasswordHash: hash, CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return s.nameTaken(c, data)
		}
		return err
	}
	sess, err := s.startSession(c, u, []string{wire.AMRPassword})
	if err != nil {
		return err
	}
	s.metrics.Signup()
	s.event(c, "register", u, sess.ID, "")
	return s.redirectBack(c, data.ReturnTo)
}

func (s *Server) nameTaken(c echo.Context, data *registerView) error {
	data.UsernameError = "That username is taken. Please choose another."
	data.Error = "Please correct the fields below."
	return s.page(c, http.StatusConflict, data)
}
