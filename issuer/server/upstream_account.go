package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
)

// The account page links and unlinks providers. Both are sensitive (a link
// is a new way into the account, an unlink may lock its owner out), so both
// take the step-up of the account's other changes: the current password
// typed again, or, for an account without a password, a sign-in within
// recentAuth (the sign-in page sends such a person to the provider with
// prompt=login).

// upstreamView is one provider on the account page.
type upstreamView struct {
	Name, Label string
	Linked      bool
}

// accountUpstreams lists every configured provider and whether cur is linked to it.
func (s *Server) accountUpstreams(c echo.Context, userID string) ([]upstreamView, error) {
	if len(s.upstreams) == 0 {
		return nil, nil
	}
	links, err := s.store.Identities(c.Request().Context(), userID)
	if err != nil {
		return nil, err
	}
	var out []upstreamView
	for _, u := range s.sortedUpstreams() {
		v := upstreamView{Name: u.cfg.Name, Label: u.cfg.Label()}
		for _, l := range links {
			v.Linked = v.Linked || l.Issuer == u.cfg.Issuer
		}
		out = append(out, v)
	}
	return out, nil
}

// stepUp checks the re-authentication of a link change; ok false means it
// answered (the account page with the error, or a redirect to sign in again).
func (s *Server) stepUp(c echo.Context, cur *current) (bool, error) {
	if cur.User.PasswordHash == "" {
		return s.recent(c, cur, "/")
	}
	refused, err := s.confirmPassword(c, cur, c.FormValue("current_password"), "factor_change_failed")
	if err != nil || refused == nil {
		return err == nil, err
	}
	return false, s.accountError(c, cur, refused.status, refused.msg)
}

func (s *Server) accountError(c echo.Context, cur *current, status int, msg string) error {
	d, err := s.accountData(c, cur)
	if err != nil {
		return err
	}
	d.UpstreamError = msg
	return s.page(c, status, d)
}

// upstreamForm admits a link or unlink form: a signed-in account session, a
// good CSRF token, a configured provider and the step-up. When ok is false
// the response is err (or already written).
func (s *Server) upstreamForm(c echo.Context) (cur *current, u *upstream, ok bool, err error) {
	cur, ok, err = s.signedIn(c, "/")
	if !ok {
		return cur, nil, false, err
	}
	if !s.checkCSRF(c) {
		return cur, nil, false, echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	if u, ok = s.upstreams[c.FormValue("idp")]; !ok {
		return cur, nil, false, s.accountError(c, cur, http.StatusBadRequest, "This site has no sign-in provider of that name.")
	}
	if ok, err = s.stepUp(c, cur); !ok {
		return cur, nil, false, err
	}
	return cur, u, true, nil
}

// accountLink is POST /account/upstream/link: after the step-up, the
// browser goes to the provider; the callback links what comes back.
func (s *Server) accountLink(c echo.Context) error {
	cur, u, ok, err := s.upstreamForm(c)
	if !ok {
		return err
	}
	return s.startFlow(c, u, upstreamFlow{ReturnTo: s.cfg.URL + "/", LinkSID: cur.Session.ID}, true)
}

// finishLink links the verified person to the user whose session started
// the flow, when that session is still this browser's and alive.
func (s *Server) finishLink(c echo.Context, u *upstream, f upstreamFlow, id *upstreamID) error {
	cur, ok := s.accountSession(c)
	if !ok || cur.Session.ID != f.LinkSID {
		return s.upstreamRefused(c, u, metrics.UpstreamBadState, http.StatusBadRequest, "Your session ended",
			"Sign in and link "+u.cfg.Label()+" again.", "", "link of a session that is not this browser's")
	}
	link := store.Identity{Issuer: id.Issuer, Subject: id.Subject, UserID: cur.User.ID, Provider: u.cfg.Name, CreatedAt: s.now()}
	if id.EmailVerified {
		link.Email = id.Email
	}
	err := s.store.LinkIdentity(c.Request().Context(), link)
	if errors.Is(err, store.ErrConflict) {
		s.metrics.Upstream(u.cfg.Name, metrics.UpstreamRefused)
		return s.accountError(c, cur, http.StatusConflict,
			"That "+u.cfg.Label()+" account is linked to another user here, or this account has another one linked already.")
	}
	if err != nil {
		return err
	}
	s.metrics.Upstream(u.cfg.Name, metrics.UpstreamSuccess)
	s.event(c, "upstream_link", cur.User, cur.Session.ID, "linked "+u.cfg.Name)
	s.clearFlowCookie(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, "/")
}

// accountUnlink is POST /account/upstream/unlink. Unlinking the last way
// to sign in (no password, no passkey, no other provider) is refused.
func (s *Server) accountUnlink(c echo.Context) error {
	cur, u, ok, err := s.upstreamForm(c)
	if !ok {
		return err
	}
	err = s.store.UnlinkIdentity(c.Request().Context(), cur.User.ID, u.cfg.Issuer, true)
	switch {
	case errors.Is(err, store.ErrLastLogin):
		return s.accountError(c, cur, http.StatusConflict,
			"This is the only way you can sign in. Add a passkey or link another provider first.")
	case errors.Is(err, store.ErrNotFound):
		return s.accountError(c, cur, http.StatusBadRequest, u.cfg.Label()+" is not linked to this account.")
	case err != nil:
		return err
	}
	s.event(c, "upstream_unlink", cur.User, cur.Session.ID, "unlinked "+u.cfg.Name)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, "/")
}
