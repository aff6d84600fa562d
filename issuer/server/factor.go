package server

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/throttle"
)

// Second factors: authenticator-app codes, recovery codes and passkeys, in
// the factor_*.go files. They meet the rest of the server at two points:
//
//   - in: login, after a right password, asks hasSecondFactor and, when the
//     account has one, startPending records a pending sign-in instead of a
//     session (factor_pending.go);
//   - out: completePending (factor_pending.go) is the one place a second
//     factor turns a pending sign-in into a session, through startSession
//     with the methods used as its amr: ["pwd","otp"] from /login/otp
//     (factor_code.go), ["pwd","hwk"] from /webauthn/2fa/finish
//     (factor_passkey_api.go).
//
// A sign-in with a passkey alone (/webauthn/login/*) needs no pending
// sign-in and calls startSession with ["hwk"] itself. Enrolment and removal
// live on the account pages: factor_totp.go (authenticator app and recovery
// codes) and factor_passkeys_page.go with the /webauthn/register/* endpoints.
// factor_webauthn.go holds the WebAuthn ceremonies every passkey step uses.

// hasSecondFactor reports whether a password sign-in of u must wait for a
// second factor: an authenticator app or a passkey.
func (s *Server) hasSecondFactor(c echo.Context, u store.User) (bool, error) {
	f, err := s.factors(c.Request().Context(), u)
	return f.totp || f.passkeys > 0, err
}

// factorSet is what second factors a user has.
type factorSet struct {
	totp     bool
	passkeys int
}

func (s *Server) factors(ctx context.Context, u store.User) (factorSet, error) {
	var f factorSet
	_, err := s.store.TOTP(ctx, u.ID)
	switch {
	case err == nil:
		f.totp = true
	case !errors.Is(err, store.ErrNotFound):
		return f, err
	}
	keys, err := s.store.Passkeys(ctx, u.ID)
	f.passkeys = len(keys)
	return f, err
}

// codeFailed is the one message for a wrong, used, malformed or expired code.
const codeFailed = "That code did not work. Check it and try again."

// factorThrottleConfig throttles second-factor attempts like passwords, but
// a guesser has the password already, so the per-account rule bites much
// earlier: after 10 failures in an hour, waits double from a second up to
// 15 minutes. A 6-digit code has a million values; three are right at once.
func factorThrottleConfig(now func() time.Time) throttle.Config {
	cfg := throttle.DefaultConfig()
	cfg.Account = throttle.Rule{Free: 10, Base: time.Second, Max: 15 * time.Minute, Window: time.Hour}
	// Only someone who knows the password reaches a second factor: its
	// per-account wait needs no cap against remote lockout.
	cfg.UntrustedAccountMax = 0
	cfg.Now = now
	return cfg
}

// factorAccount is the throttle's account key for second-factor attempts.
func factorAccount(userID string) string { return "factor:" + userID }
