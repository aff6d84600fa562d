package server

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/password"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// errorHandler renders errors without internals: the cause goes to the log.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "Something went wrong on our side. Please try again."
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok && code < 500 {
			msg = m
		} else if code < 500 {
			msg = http.StatusText(code)
		}
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, password.ErrBusy) {
		code = http.StatusServiceUnavailable
		msg = "The sign-in service is busy or unavailable. Please try again in a moment."
		c.Response().Header().Set("Retry-After", "5")
	}
	if code >= 500 {
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	if strings.HasPrefix(c.Request().URL.Path, "/.well-known/") || strings.HasPrefix(c.Request().URL.Path, "/webauthn/") ||
		c.Request().Method == http.MethodPost && c.Request().URL.Path == "/refresh" ||
		c.Request().URL.Path == "/sessions/revoked" || c.Request().URL.Path == wire.PathToken || c.Request().URL.Path == wire.PathUserinfo {
		_ = c.JSON(code, map[string]string{"error": strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "_"))})
		return
	}
	err = s.page(c, code, &messageView{Title: http.StatusText(code), Message: msg, Link: "/", LinkText: "Go to your account"})
	if err != nil {
		// The message page itself failed: plain text, still without internals.
		s.log.Error("error page failed", "path", c.Request().URL.Path, "err", err)
		_ = c.String(code, msg+"\n")
	}
}

// page renders v into a buffer and only then writes the status and the
// body: a template error becomes the error handler's 500, not an empty page
// with the status already sent.
func (s *Server) page(c echo.Context, code int, v view) error {
	v.frameData().Domain = s.domainOf(c).cookieDomain
	var buf bytes.Buffer
	if err := s.tmpl.Render(&buf, v.template(), v); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(code, buf.Bytes())
}
