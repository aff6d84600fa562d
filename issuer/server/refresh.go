package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// refreshRedirect is the browser flow: rotate and go back, go to the login
// form, or (store overloaded) a 503 page that retries by itself.
func (s *Server) refreshRedirect(c echo.Context) error {
	returnTo := s.returnTo(c.QueryParam("return_to"))
	if _, err := s.rotate(c); err != nil {
		if wait, ok := overloaded(c, err); ok {
			// A page that asks again by itself once the wait is over: the
			// same URL, so the same cookie and return_to.
			return s.page(c, http.StatusServiceUnavailable, &messageView{Title: "One moment",
				Message: "Many people are signing in right now. This page tries again by itself in a moment.",
				Link:    c.Request().URL.RequestURI(), LinkText: "Try again now", Retry: wait})
		}
		if !refreshRefused(err) {
			return err
		}
		s.clearDeadCookies(c)
		if d := s.domainOf(c); !d.primary {
			// Signing in happens at the primary: hop there and back.
			return s.hopStart(c, d, returnTo, false)
		}
		target := "/login"
		if returnTo != "" {
			target += "?return_to=" + url.QueryEscape(returnTo)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, target)
	}
	return s.redirectBack(c, returnTo)
}

// refreshAPI is the fetch() flow: 204 with new cookies, 401 JSON, or 503
// JSON with Retry-After when the store's write queue is full.
func (s *Server) refreshAPI(c echo.Context) error {
	origin, ok := s.corsOrigin(c)
	s.setCORS(c, origin)
	c.Response().Header().Set("Cache-Control", "no-store")
	if !ok {
		return c.JSON(http.StatusForbidden, map[string]string{"error": "origin_not_allowed"})
	}
	if _, err := s.rotate(c); err != nil {
		if wait, ok := overloaded(c, err); ok {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"error": "overloaded", "retry_after": wait})
		}
		if !refreshRefused(err) {
			return err
		}
		s.clearDeadCookies(c)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "unauthenticated",
			"login_url": s.domainOf(c).url + "/login"})
	}
	return c.NoContent(http.StatusNoContent)
}

// overloaded reports whether err is the store's refusal to queue another
// rotation (store.OverloadError) and, if so, sets Retry-After and no-store
// and returns the wait in whole seconds: the client retries after it, with
// the same refresh cookie, which is still current.
func overloaded(c echo.Context, err error) (int, bool) {
	var oe *store.OverloadError
	if !errors.As(err, &oe) {
		return 0, false
	}
	wait := max(1, int((oe.RetryAfter+time.Second-1)/time.Second))
	h := c.Response().Header()
	h.Set("Retry-After", strconv.Itoa(wait))
	h.Set("Cache-Control", "no-store")
	return wait, true
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

// rotate runs the refresh rotation for the refresh cookie and sets new cookies.
func (s *Server) rotate(c echo.Context) (store.RotateResult, error) {
	ck, err := c.Cookie(s.cookies.Refresh)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return store.RotateResult{}, store.ErrNotFound
	}
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	next := s.successor(ck.Value)
	res, err := s.store.RotateRefresh(c.Request().Context(), store.RotateRequest{
		PresentedHash: hashToken(ck.Value), SuccessorHash: hashToken(next), Now: now,
		Grace: s.cfg.RefreshGrace, IdleTTL: s.cfg.IdleTTL, AccessExpiry: exp,
	})
	switch {
	case errors.Is(err, store.ErrOverloaded):
		s.metrics.Refresh(metrics.RefreshOverloaded)
		return res, err
	case errors.Is(err, store.ErrReuse):
		s.metrics.Refresh(metrics.RefreshReuse)
		// The store ended this session; its whole family (the primary
		// session and those linked to it on other domains) ends too.
		if rerr := s.store.RevokeSession(c.Request().Context(), store.RootSessionID(res.Session.ID), store.ReasonReuse, now); rerr != nil &&
			!errors.Is(rerr, store.ErrNotFound) {
			return res, rerr
		}
		s.event(c, "refresh_reuse", res.User, res.Session.ID, "a superseded refresh token was presented; session revoked")
		return res, err
	case errors.Is(err, store.ErrSessionEnded):
		s.metrics.Refresh(metrics.RefreshEnded)
		return res, err
	case errors.Is(err, store.ErrNotFound):
		s.metrics.Refresh(metrics.RefreshUnknown)
		return res, err
	case err != nil:
		s.metrics.Refresh(metrics.RefreshError)
		return res, err
	case res.Outcome == store.Converged:
		s.metrics.Refresh(metrics.RefreshConverged)
	default:
		s.metrics.Refresh(metrics.RefreshRotated)
	}
	// The rotation read the session's methods and the user's groups in its
	// own transaction: no further query before minting.
	f := facts{amr: res.AMR, groups: res.Groups}
	if f.amr == nil {
		// Sessions from before methods were recorded all began with a password.
		f.amr = []string{wire.AMRPassword}
	}
	if slices.Contains(f.amr, wire.AMRFederated) {
		if err := s.upstreamFacts(c.Request().Context(), res.Session.ID, &f); err != nil {
			return res, err
		}
	}
	d := s.domainOf(c)
	if !d.owns(res.Session.ID) {
		// Another domain's refresh token (host-only: no browser sends it
		// here). It rotated, so its holder's next use is reuse.
		s.log.Warn("refresh token presented on another domain's host", "domain", d.cookieDomain)
		return res, store.ErrNotFound
	}
	access, err := s.mint(d, res.User, res.Session, f, now, exp)
	if err != nil {
		return res, err
	}
	s.setSessionCookies(c, access, next, res.Session, now)
	return res, nil
}

// successor derives the next refresh token from the presented one, so that
// every retry and every instance computes the same value (SPEC.md, Refresh).
func (s *Server) successor(tok string) string {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write([]byte("canopy refresh successor\x00"))
	m.Write([]byte(tok))
	return rawURL(m.Sum(nil))
}

// hashToken is the stored form of a refresh token.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
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
	cd := s.domainOf(c).cookieDomain
	if host != cd && !strings.HasSuffix(host, "."+cd) {
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
