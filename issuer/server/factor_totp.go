package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/otpcode"
	"github.com/canopy-sso/canopy/issuer/store"
)

// enrolTTL bounds how long an enrolment form stays valid.
const enrolTTL = 15 * time.Minute

// enrolToken carries a TOTP secret offered for enrolment in the form that
// confirms it: "<secret>.<expiry>.<mac>" with an HMAC over the user, the
// secret and the expiry, so the confirmation cannot choose its own secret or
// be replayed for another user or later.
func (s *Server) enrolToken(userID, secret string, exp int64) string {
	return secret + "." + strconv.FormatInt(exp, 10) + "." + s.enrolMAC(userID, secret, exp)
}

func (s *Server) enrolMAC(userID, secret string, exp int64) string {
	m := hmac.New(sha256.New, s.mfaKey)
	fmt.Fprintf(m, "canopy totp enrolment\x00%s\x00%s\x00%d", userID, secret, exp)
	return rawURL(m.Sum(nil))
}

func (s *Server) openEnrolToken(userID, tok string) (string, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 256 {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.now().Unix() >= exp {
		return "", false
	}
	return parts[0], hmac.Equal([]byte(parts[2]), []byte(s.enrolMAC(userID, parts[0], exp)))
}

// totpForm shows a new secret as a QR code and as text, with a form that
// confirms it with a first code.
func (s *Server) totpForm(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/account/totp")
	if !ok {
		return err
	}
	if ok, err := s.recent(c, cur, "/account/totp"); !ok {
		return err
	}
	if _, err := s.store.TOTP(c.Request().Context(), cur.User.ID); err == nil {
		return c.Redirect(http.StatusSeeOther, "/")
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	key, err := otpcode.NewKey(s.cfg.CookieDomain, cur.User.Username)
	if err != nil {
		return err
	}
	d, err := s.totpData(c, cur, key.Secret)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, d)
}

func (s *Server) totpData(c echo.Context, cur *current, secret string) (*totpView, error) {
	qr, err := otpcode.QRDataURI(otpURL(s.cfg.CookieDomain, cur.User.Username, secret))
	if err != nil {
		return nil, err
	}
	exp := s.now().Add(enrolTTL).Unix()
	return &totpView{frame: frame{User: cur.User.Username}, CSRF: s.ensureCSRF(c), QR: qr, Secret: secret,
		Enrol: s.enrolToken(cur.User.ID, secret, exp)}, nil
}

// enableTOTP confirms an enrolment with a first code and the password,
// then shows the recovery codes, once.
func (s *Server) enableTOTP(c echo.Context) error {
	cur, ok, err := s.signedIn(c, "/account/totp")
	if !ok {
		return err
	}
	if !s.checkCSRF(c) {
		return echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	if ok, err := s.recent(c, cur, "/account/totp"); !ok {
		return err
	}
	secret, ok := s.openEnrolToken(cur.User.ID, c.FormValue("enrol"))
	if !ok {
		return c.Redirect(http.StatusSeeOther, "/account/totp")
	}
	account, addr := factorAccount(cur.User.ID), clientAddr(c)
	retry := func(status int, msg string) error {
		d, err := s.totpData(c, cur, secret)
		if err != nil {
			return err
		}
		d.Error = msg
		return s.page(c, status, d)
	}
	if refused, err := s.confirmPassword(c, cur, c.FormValue("password"), "factor_change_failed"); refused != nil || err != nil {
		if err != nil {
			return err
		}
		return retry(refused.status, refused.msg)
	}
	attempt, wait := s.factorThrottle.Begin(account, addr)
	if attempt == nil {
		return retry(http.StatusTooManyRequests, "Too many wrong codes. Wait "+wait.Round(time.Second).String()+" and try again.")
	}
	defer attempt.Release() // on the paths without an outcome
	step, err := otpcode.Check(secret, truncate(c.FormValue("code"), 64), s.now(), 0)
	if err != nil {
		attempt.Failure()
		return retry(http.StatusUnauthorized, codeFailed)
	}
	attempt.Success()
	codes, hashes := otpcode.NewRecoveryCodes()
	// The confirming code's step counts as used: it cannot sign in.
	err = s.store.EnableTOTP(c.Request().Context(), store.TOTP{UserID: cur.User.ID, Secret: secret, CreatedAt: s.now(), LastStep: step}, hashes)
	if errors.Is(err, store.ErrConflict) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	s.event(c, "totp_enabled", cur.User, cur.Session.ID, "")
	return s.page(c, http.StatusOK, &recoveryView{frame: frame{User: cur.User.Username}, Codes: codes,
		Notice: "Your authenticator app is set up. From now on, signing in asks for a code from it after your password."})
}

// otpURL rebuilds the otpauth URL of a secret being enrolled.
func otpURL(issuer, account, secret string) string {
	v := url.Values{"secret": {secret}, "issuer": {issuer}, "period": {"30"}, "algorithm": {"SHA1"}, "digits": {"6"}}
	return "otpauth://totp/" + url.PathEscape(issuer) + ":" + url.PathEscape(account) + "?" + v.Encode()
}

// factorChange admits a change of the second factors from the account
// page: an account session, the form's CSRF token, a recent sign-in and the
// password typed into the form now. When it answers false it has answered
// the request (with the account page and its error, or a redirect).
func (s *Server) factorChange(c echo.Context) (*current, bool, error) {
	cur, ok, err := s.signedIn(c, "/")
	if !ok {
		return nil, false, err
	}
	if !s.checkCSRF(c) {
		return nil, false, echo.NewHTTPError(http.StatusForbidden, "This form had expired. Please go back and try again.")
	}
	if ok, err := s.recent(c, cur, "/"); !ok {
		return nil, false, err
	}
	refused, err := s.confirmPassword(c, cur, c.FormValue("password"), "factor_change_failed")
	if err != nil || refused == nil {
		return cur, err == nil, err
	}
	d, err := s.accountData(c, cur)
	if err != nil {
		return nil, false, err
	}
	d.FactorError = refused.msg
	return nil, false, s.page(c, refused.status, d)
}

// removeTOTP turns the authenticator app off (and, with no other second
// factor left, the recovery codes with it). It needs a recent sign-in and
// the password.
func (s *Server) removeTOTP(c echo.Context) error {
	cur, ok, err := s.factorChange(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	err = s.store.DisableTOTP(ctx, cur.User.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		s.event(c, "totp_disabled", cur.User, cur.Session.ID, "")
	}
	if more, err := s.hasSecondFactor(c, cur.User); err != nil {
		return err
	} else if !more {
		if err := s.store.ReplaceRecoveryCodes(ctx, cur.User.ID, nil); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// newRecoveryCodes replaces the recovery codes and shows the new ones, once.
func (s *Server) newRecoveryCodes(c echo.Context) error {
	cur, ok, err := s.factorChange(c)
	if !ok {
		return err
	}
	if more, err := s.hasSecondFactor(c, cur.User); err != nil {
		return err
	} else if !more {
		return echo.NewHTTPError(http.StatusConflict, "Recovery codes go with a second factor. Set one up first.")
	}
	codes, hashes := otpcode.NewRecoveryCodes()
	if err := s.store.ReplaceRecoveryCodes(c.Request().Context(), cur.User.ID, hashes); err != nil {
		return err
	}
	s.event(c, "recovery_codes_replaced", cur.User, cur.Session.ID, "")
	return s.page(c, http.StatusOK, &recoveryView{frame: frame{User: cur.User.Username}, Codes: codes,
		Notice: "Your old recovery codes no longer work."})
}
