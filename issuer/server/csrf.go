package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

func rawURL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// The CSRF defence is a signed double-submit: a random secret in a host-only
// SameSite=Strict cookie, and in each form an HMAC of it under a server key,
// which a sibling subdomain can neither read nor forge. Origin and
// Sec-Fetch-Site are checked as well.

func (s *Server) csrfToken(secret string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("canopy csrf\x00"))
	m.Write([]byte(secret))
	return rawURL(m.Sum(nil))
}

// ensureCSRF returns the form token for this browser, setting the secret cookie if needed.
func (s *Server) ensureCSRF(c echo.Context) string {
	if ck, err := c.Cookie(s.cookies.CSRF); err == nil && len(ck.Value) == 43 {
		return s.csrfToken(ck.Value)
	}
	return s.rotateCSRF(c)
}

// rotateCSRF sets a fresh CSRF secret and returns its form token.
func (s *Server) rotateCSRF(c echo.Context) string {
	secret := randomID(32)
	c.SetCookie(&http.Cookie{Name: s.cookies.CSRF, Value: secret, Path: "/", MaxAge: 3600,
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return s.csrfToken(secret)
}

// checkCSRF accepts a state-changing form post only from the issuer's own pages.
func (s *Server) checkCSRF(c echo.Context) bool {
	req := c.Request()
	if site := req.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	if o := req.Header.Get("Origin"); o != "" && o != s.domainOf(c).url {
		return false
	}
	ck, err := c.Cookie(s.cookies.CSRF)
	if err != nil || ck.Value == "" {
		return false
	}
	got := c.FormValue("csrf_token")
	want := s.csrfToken(ck.Value)
	return len(got) == len(want) && hmac.Equal([]byte(got), []byte(want))
}

// checkJSONCSRF accepts a JSON POST only from the issuer's own pages: its
// exact Origin (fetch always sends one), not cross- or same-site, JSON, and
// the form token in X-CSRF-Token.
func (s *Server) checkJSONCSRF(c echo.Context) bool {
	req := c.Request()
	if req.Header.Get("Origin") != s.origin {
		return false
	}
	if site := req.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	if ct := req.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return false
	}
	ck, err := c.Cookie(s.cookies.CSRF)
	if err != nil || ck.Value == "" {
		return false
	}
	got, want := req.Header.Get("X-CSRF-Token"), s.csrfToken(ck.Value)
	return len(got) == len(want) && hmac.Equal([]byte(got), []byte(want))
}
