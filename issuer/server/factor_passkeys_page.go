package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

// passkeysPage lists the account's passkeys, with a button to add one
// (driven by /static/passkeys.js) and one to remove each.
func (s *Server) passkeysPage(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/account/passkeys")
	if !ok {
		return err
	}
	d, err := s.passkeysData(c, cur)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, d)
}

func (s *Server) passkeysData(c echo.Context, cur *current) (*passkeysView, error) {
	keys, err := s.store.Passkeys(c.Request().Context(), cur.User.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := &passkeysView{frame: frame{User: cur.User.Username}, CSRF: s.ensureCSRF(c), Now: now,
		Recent: now.Sub(cur.Session.AuthTime) <= recentAuth, AccountURL: s.cfg.URL + "/account/passkeys"}
	for _, k := range keys {
		d.Passkeys = append(d.Passkeys, passkeyView{ID: k.ID, Name: k.Name, Created: k.CreatedAt, LastUsed: k.LastUsedAt})
	}
	if d.RecoveryLeft, err = s.store.RecoveryCodesLeft(c.Request().Context(), cur.User.ID); err != nil {
		return nil, err
	}
	return d, nil
}

// removePasskey deletes one of the account's passkeys; it needs a recent
// sign-in and the password. With no second factor left, the recovery codes
// go too.
func (s *Server) removePasskey(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/account/passkeys")
	if !ok {
		return err
	}
	if !s.checkCSRF(c) {
		return echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	if ok, err := s.recent(c, cur, "/account/passkeys"); !ok {
		return err
	}
	if refused, err := s.confirmPassword(c, cur, c.FormValue("password"), "factor_change_failed"); refused != nil || err != nil {
		if err != nil {
			return err
		}
		d, err := s.passkeysData(c, cur)
		if err != nil {
			return err
		}
		d.Error = refused.msg
		return s.page(c, refused.status, d)
	}
	ctx := c.Request().Context()
	id := truncate(c.FormValue("id"), 512)
	err = s.store.RemovePasskey(ctx, cur.User.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "That passkey was not found.")
	}
	if err != nil {
		return err
	}
	s.event(c, "passkey_removed", cur.User, cur.Session.ID, "")
	if more, err := s.hasSecondFactor(c, cur.User); err != nil {
		return err
	} else if !more {
		if err := s.store.ReplaceRecoveryCodes(ctx, cur.User.ID, nil); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, "/account/passkeys")
}
