package server

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

// event records an audit event; a failure to record is logged, never fatal to the request.
func (s *Server) event(c echo.Context, kind string, u store.User, sid, detail string) {
	e := store.Event{At: s.now(), Kind: kind, UserID: u.ID, Username: u.Username, SessionID: sid,
		IP: c.RealIP(), UserAgent: truncate(c.Request().UserAgent(), 256), Detail: detail}
	if err := s.store.AddEvent(context.WithoutCancel(c.Request().Context()), e); err != nil {
		s.log.Warn("audit event not recorded", "kind", kind, "err", err)
	}
}

func describe(e store.Event) string {
	switch e.Kind {
	case "login":
		return "Signed in"
	case "login_failed":
		return "Failed sign-in attempt"
	case "register":
		return "Account created"
	case "logout":
		return "Signed out"
	case "signout":
		return "Signed out a session"
	case "signout_others":
		return "Signed out all other sessions"
	case "domain_link":
		return "Signed in on " + e.Detail + " through this site's sign-in"
	case "refresh_reuse":
		return "Session ended: a stolen or replayed sign-in token was detected"
	case "password_change":
		return "Password changed"
	case "password_change_failed":
		return "Failed attempt to change the password"
	case "factor_change_failed":
		return "Failed attempt to change the second factors: wrong password"
	case "totp_enabled":
		return "Authenticator app turned on"
	case "totp_disabled":
		return "Authenticator app turned off"
	case "second_factor_failed":
		return "Wrong code at sign-in"
	case "second_factor_throttled":
		return "Sign-in codes paused after too many wrong ones"
	case "recovery_code_used":
		return "Recovery code used"
	case "recovery_codes_replaced":
		return "New recovery codes made"
	case "passkey_added":
		// The name is the user's own text: shown escaped, so that a
		// bidirectional override or a line separator cannot disguise the line.
		return "Passkey added: " + store.Printable(e.Detail)
	case "passkey_removed":
		return "Passkey removed"
	case "upstream_link":
		return "Sign-in provider linked: " + store.Printable(e.Detail)
	case "upstream_unlink":
		return "Sign-in provider unlinked: " + store.Printable(e.Detail)
	}
	return store.Printable(e.Kind)
}
