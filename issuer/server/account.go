package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

func (s *Server) account(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/")
	if !ok {
		return err
	}
	d, err := s.accountData(c, cur)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, d)
}

// accountData is what the account page shows.
func (s *Server) accountData(c echo.Context, cur *current) (*accountView, error) {
	ctx := c.Request().Context()
	now := s.now()
	sessions, err := s.store.ListSessions(ctx, cur.User.ID, now, s.cfg.IdleTTL)
	if err != nil {
		return nil, err
	}
	events, err := s.store.Events(ctx, cur.User.ID, 15)
	if err != nil {
		return nil, err
	}
	d := &accountView{frame: frame{User: cur.User.Username}, CSRF: s.ensureCSRF(c), Now: now,
		UserPage: s.userPage(cur.User.Username), Recent: now.Sub(cur.Session.AuthTime) <= recentAuth,
		AccountURL: s.cfg.URL + "/"}
	for _, ss := range sessions {
		v := sessionView{ID: ss.ID, Device: device(ss.UserAgent), IP: ss.IP,
			Created: ss.CreatedAt, LastUsed: ss.LastUsedAt, Current: store.RootSessionID(ss.ID) == cur.Session.ID}
		if tag := store.SessionDomainTag(ss.ID); tag != "" {
			v.Domain = tag // a domain no longer configured
			if dom := s.domainByTag(tag); dom != nil {
				v.Domain = dom.cookieDomain
			}
		}
		d.Sessions = append(d.Sessions, v)
	}
	for _, e := range events {
		d.Events = append(d.Events, eventView{At: e.At, What: describe(e), IP: e.IP})
	}
	t, err := s.store.TOTP(ctx, cur.User.ID)
	switch {
	case err == nil:
		d.TOTPOn, d.TOTPSince = true, t.CreatedAt
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if d.RecoveryLeft, err = s.store.RecoveryCodesLeft(ctx, cur.User.ID); err != nil {
		return nil, err
	}
	keys, err := s.store.Passkeys(ctx, cur.User.ID)
	if err != nil {
		return nil, err
	}
	d.PasskeyCount = len(keys)
	d.HasPassword = cur.User.PasswordHash != ""
	if d.Upstreams, err = s.accountUpstreams(c, cur.User.ID); err != nil {
		return nil, err
	}
	return d, nil
}

// userPage is the user's own host under the cookie domain, on the issuer's scheme.
func (s *Server) userPage(name string) string { return s.cfg.UserPage(name) }

func (s *Server) signOutSession(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/")
	if !ok {
		return err
	}
	if !s.checkCSRF(c) {
		return echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	ctx := c.Request().Context()
	sid := c.FormValue("sid")
	now := s.now()
	switch sid {
	case "others":
		if err := s.store.RevokeUserSessions(ctx, cur.User.ID, cur.Session.ID, store.ReasonSignOutOthers, now); err != nil {
			return err
		}
		s.event(c, "signout_others", cur.User, cur.Session.ID, "")
	default:
		sess, err := s.store.Session(ctx, sid)
		// Only the user's own sessions; anything else looks like "not found".
		if err != nil || sess.UserID != cur.User.ID {
			return echo.NewHTTPError(http.StatusNotFound, "That session was not found.")
		}
		if err := s.store.RevokeSession(ctx, sid, store.ReasonSignOutOne, now); err != nil {
			return err
		}
		s.event(c, "signout", cur.User, sid, "")
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// device turns a User-Agent into a short label such as "Chrome on Linux".
func device(ua string) string {
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go client"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Mac OS X", "macOS"},
		{"Windows", "Windows"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return browser + " on " + o.name
		}
	}
	return browser
}
