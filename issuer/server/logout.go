package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

func (s *Server) logoutForm(c echo.Context) error {
	d := &logoutView{CSRF: s.ensureCSRF(c), ReturnTo: s.returnTo(c.QueryParam("return_to"))}
	if cur, ok := s.currentSession(c); ok {
		d.User = cur.User.Username
	}
	return s.page(c, http.StatusOK, d)
}

func (s *Server) logout(c echo.Context) error {
	returnTo := s.returnTo(c.FormValue("return_to"))
	if !s.checkCSRF(c) {
		return s.page(c, http.StatusForbidden, &logoutView{CSRF: s.rotateCSRF(c), ReturnTo: returnTo,
			Error: "This form had expired. Please try again."})
	}
	if sid, ok := s.sessionForLogout(c); ok {
		// The whole family: the primary session and those linked to it on
		// the other domains, whichever domain signs out.
		if err := s.store.RevokeSession(c.Request().Context(), store.RootSessionID(sid), store.ReasonLogout, s.now()); err != nil {
			return err
		}
		u := store.User{}
		if sess, err := s.store.Session(c.Request().Context(), sid); err == nil {
			u.ID = sess.UserID
		}
		s.event(c, "logout", u, sid, "")
	}
	s.clearSessionCookies(c)
	s.rotateCSRF(c)
	if returnTo == "" {
		returnTo = "/login"
	}
	return s.redirectBack(c, returnTo)
}

// sessionForLogout finds the session to end: from a valid access token, or
// from the refresh cookie when the access token has expired.
func (s *Server) sessionForLogout(c echo.Context) (string, bool) {
	if cur, ok := s.currentSession(c); ok {
		return cur.Session.ID, true
	}
	ck, err := c.Cookie(s.cookies.Refresh)
	if err != nil || ck.Value == "" {
		return "", false
	}
	sess, err := s.store.SessionByRefresh(c.Request().Context(), hashToken(ck.Value))
	if err != nil {
		return "", false
	}
	return sess.ID, true
}
