package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/otpcode"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

func (s *Server) secondFactorForm(c echo.Context) error {
	p, err := s.currentPending(c)
	if errors.Is(err, errNoPending) {
		return s.pendingGone(c)
	}
	if err != nil {
		return err
	}
	d, err := s.secondFactorData(c, p)
	if err != nil {
		return err
	}
	d.CSRF = s.ensureCSRF(c)
	return s.page(c, http.StatusOK, d)
}

func (s *Server) secondFactorData(c echo.Context, p *pending) (*secondFactorView, error) {
	f, err := s.factors(c.Request().Context(), p.user)
	return &secondFactorView{ReturnTo: p.data.ReturnTo, Username: p.user.Username, TOTPOn: f.totp, HasPasskeys: f.passkeys > 0}, err
}

// secondFactor checks a TOTP code or a recovery code for a pending sign-in.
func (s *Server) secondFactor(c echo.Context) error {
	p, err := s.currentPending(c)
	if errors.Is(err, errNoPending) {
		return s.pendingGone(c)
	}
	if err != nil {
		return err
	}
	data, err := s.secondFactorData(c, p)
	if err != nil {
		return err
	}
	if !s.checkCSRF(c) {
		data.CSRF = s.rotateCSRF(c)
		data.Error = "This form had expired. Please try again."
		return s.page(c, http.StatusForbidden, data)
	}
	data.CSRF = s.ensureCSRF(c)
	account, addr := factorAccount(p.user.ID), clientAddr(c)
	attempt, wait := s.factorThrottle.Begin(account, addr)
	if attempt == nil {
		s.metrics.SecondFactorThrottled() // no audit row: as for passwords, a throttled attempt writes nothing
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		data.Error = "Too many wrong codes. Wait " + wait.Round(time.Second).String() + " and try again."
		return s.page(c, http.StatusTooManyRequests, data)
	}
	defer attempt.Release() // on the paths without an outcome
	how, err := s.checkCode(c, p.user, truncate(c.FormValue("code"), 64))
	if err != nil {
		if !errors.Is(err, errBadCode) {
			return err
		}
		attempt.Failure()
		s.event(c, "second_factor_failed", p.user, "", "")
		data.Error = codeFailed
		return s.page(c, http.StatusUnauthorized, data)
	}
	attempt.Success()
	return s.finishPending(c, p, append(p.data.AMR[:len(p.data.AMR):len(p.data.AMR)], wire.AMROTP), how)
}

// errBadCode: the code is wrong, used, or not a code at all.
var errBadCode = errors.New("server: bad one-time code")

// checkCode accepts input as the user's TOTP code (then spent) or as one of
// their unused recovery codes (then used up); it says which.
func (s *Server) checkCode(c echo.Context, u store.User, input string) (string, error) {
	ctx := c.Request().Context()
	if _, ok := otpcode.Normalize(input); ok {
		t, err := s.store.TOTP(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			return "", errBadCode
		}
		if err != nil {
			return "", err
		}
		step, err := otpcode.Check(t.Secret, input, s.now(), t.LastStep)
		if err != nil {
			return "", errBadCode
		}
		// The store decides: of two requests with one code, one wins.
		if err := s.store.UseTOTPStep(ctx, u.ID, step); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return "", errBadCode
			}
			return "", err
		}
		return "with an authenticator code", nil
	}
	code, ok := otpcode.NormalizeRecovery(input)
	if !ok {
		return "", errBadCode
	}
	err := s.store.UseRecoveryCode(ctx, u.ID, otpcode.HashRecovery(code), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", errBadCode
	}
	if err != nil {
		return "", err
	}
	s.event(c, "recovery_code_used", u, "", "")
	return "with a recovery code", nil
}
