package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

// refreshRedirect is the browser flow: rotate and go back, or go to the login form.
func (s *Server) refreshRedirect(c echo.Context) error {
	returnTo := s.returnTo(c.QueryParam("return_to"))
	if _, err := s.rotate(c); err != nil {
		if !refreshRefused(err) {
			return err
		}
		s.clearDeadCookies(c)
		target := "/login"
		if returnTo != "" {
			target += "?return_to=" + url.QueryEscape(returnTo)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, target)
	}
	return s.redirectBack(c, returnTo)
}

// refreshRefused reports whether err means "no usable session" rather than a fault.
func refreshRefused(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSessionEnded) || errors.Is(err, store.ErrReuse)
}

// clearDeadCookies runs after a refused rotation (refreshRefused): the
// refresh cookie can never work again, so both session cookies go. A browser
// that sent no refresh cookie is told nothing.
func (s *Server) clearDeadCookies(c echo.Context) {
	if _, err := c.Cookie(s.cookies.Refresh); err == nil {
		s.clearSessionCookies(c)
	}
}

// corsOrigin returns the Origin to echo back when it is the issuer's scheme on
// the cookie domain or under it (any port), and whether the request may go on.
func (s *Server) corsOrigin(c echo.Context) (string, bool) {
	origin := c.Request().Header.Get("Origin")
	if origin == "" {
		return "", true // same-origin or not a browser
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != s.cfg.Scheme() || u.Path != "" || u.User != nil || u.RawQuery != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host != s.cfg.CookieDomain && !strings.HasSuffix(host, "."+s.cfg.CookieDomain) {
		return "", false
	}
	return origin, true
}

func (s *Server) setCORS(c echo.Context, origin string) {
	h := c.Response().Header()
	h.Add("Vary", "Origin")
	if origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

func (s *Server) refreshPreflight(c echo.Context) error {
	origin, ok := s.corsOrigin(c)
	s.setCORS(c, origin)
	if !ok {
		return c.NoContent(http.StatusForbidden)
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	return c.NoContent(http.StatusNoContent)
}

// refreshAPI is the fetch() flow: 204 with new cookies, or 401 JSON.
func (s *Server) refreshAPI(c echo.Context) error {
	origin, ok := s.corsOrigin(c)
	s.setCORS(c, origin)
	c.Response().Header().Set("Cache-Control", "no-store")
	if !ok {
		return c.JSON(http.StatusForbidden, map[string]string{"error": "origin_not_allowed"})
	}
	if _, err := s.rotate(c); err != nil {
		if !refreshRefused(err) {
			return err
		}
		s.clearDeadCookies(c)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "unauthenticated",
			"login_url": s.cfg.URL + "/login"})
	}
	return c.NoContent(http.StatusNoContent)
}
